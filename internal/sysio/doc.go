// Package sysio reads and writes non-blocking socket descriptors with
// plain system calls, for the runtime's and the benchmark client's hot
// paths (Unix only).
package sysio
