package raft

// SetNoNoop lets the external tests turn off a new leader's no-op (see
// Config.noNoop).
func SetNoNoop(c *Config, on bool) { c.noNoop = on }
