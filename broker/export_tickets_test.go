package broker

// SetEUIDForTest makes serve take uid as its effective uid when it checks
// who owns its files; it returns a function that undoes it.
func SetEUIDForTest(uid int) (restore func()) {
	old := geteuid
	geteuid = func() int { return uid }
	return func() { geteuid = old }
}
