//go:build tools

package tools

import (
	_ "github.com/anishathalye/porcupine"
	_ "github.com/google/go-cmp/cmp"
	_ "pgregory.net/rapid"
)
