package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// explainArgs wraps every runnable command's positional-argument check so
// that a wrong count says which argument is missing (or which are extra)
// with the usage line, instead of cobra's bare "accepts 2 arg(s),
// received 1".
func explainArgs(c *cobra.Command) {
	for _, sub := range c.Commands() {
		explainArgs(sub)
	}
	if c.Args == nil || !c.Runnable() || c.HasSubCommands() {
		return
	}
	inner := c.Args
	c.Args = func(cmd *cobra.Command, args []string) error {
		if err := inner(cmd, args); err != nil {
			return argsError(cmd, args, err)
		}
		return nil
	}
}

// argsError says what is wrong with args in terms of the names in the
// command's Use line (the upper-case words: FILE USER).
func argsError(cmd *cobra.Command, args []string, err error) error {
	usage := "usage: " + strings.TrimSuffix(cmd.UseLine(), " [flags]") + " (see " + cmd.CommandPath() + " --help)"
	// The required arguments, then whether optional ones may follow.
	var names []string
	optional := false
	for _, w := range strings.Fields(cmd.Use)[1:] {
		if strings.HasPrefix(w, "[") {
			optional = true
			break
		}
		if strings.ContainsAny(w, "()") || w == "|" || strings.HasPrefix(w, "-") {
			names, optional = nil, true // alternatives with flags: no simple list
			break
		}
		if n, ok := strings.CutSuffix(w, "..."); ok {
			names, optional = append(names, n), true
			break
		}
		names = append(names, w)
	}
	switch {
	case len(names) == 0 && !optional && len(args) > 0:
		return fmt.Errorf("%s takes no arguments, got %q; %s", cmd.CommandPath(), args[0], usage)
	case len(names) > 0 && len(args) < len(names):
		return fmt.Errorf("missing %s; %s", strings.Join(names[len(args):], " and "), usage)
	case len(names) > 0 && !optional && len(args) > len(names):
		return fmt.Errorf("%s takes %d argument(s), %s; %q is one too many; %s", cmd.CommandPath(), len(names), strings.Join(names, " "), args[len(names)], usage)
	}
	return fmt.Errorf("%w; %s", err, usage)
}
