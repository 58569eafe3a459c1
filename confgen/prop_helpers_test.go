package confgen

import (
	mrand "math/rand"
	"strings"
)

// randomTopic makes a topic of 1 to 3 of levels for the translation
// property tests; a filter gets '+' levels (one in plusOneIn) and a final
// '#' as often. MQTT has no empty topic: "" becomes "e".
func randomTopic(r *mrand.Rand, levels []string, filter bool, plusOneIn int) string {
	n := 1 + r.Intn(3)
	var ls []string
	for i := 0; i < n; i++ {
		l := levels[r.Intn(len(levels))]
		if filter {
			switch r.Intn(plusOneIn) {
			case 0:
				l = "+"
			case 1:
				if i == n-1 {
					l = "#"
				}
			}
		}
		ls = append(ls, l)
	}
	if t := strings.Join(ls, "/"); t != "" {
		return t
	}
	return "e"
}
