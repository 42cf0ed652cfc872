// Package purity enforces the rule that machine packages are pure: they
// import nothing that reads time or randomness, touches the network, the
// disk or the OS, or synchronises goroutines, and they never start one.
package purity

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// Forbidden lists the standard-library imports a pure package may not have.
var Forbidden = []string{"os", "os/exec", "os/signal", "net", "net/http", "syscall", "sync", "sync/atomic",
	"math/rand", "crypto/rand", "unsafe", "runtime", "io/ioutil", "io/fs", "log", "log/slog"}

// clockFuncs are the time package functions that read or wait on the clock.
var clockFuncs = []string{"Now", "Since", "Until", "Sleep", "After", "AfterFunc", "Tick", "NewTimer", "NewTicker"}

type pkg struct {
	ImportPath string
	Dir        string
	GoFiles    []string
	Imports    []string
	Standard   bool
}

// Check lists the violations in the given packages and in every non-standard
// package they depend on. patterns are go list patterns, run in dir.
func Check(dir string, patterns ...string) ([]string, error) {
	cmd := exec.Command("go", append([]string{"list", "-deps", "-json"}, patterns...)...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %w", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	var problems []string
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			return nil, fmt.Errorf("go list output: %w", err)
		}
		if p.Standard {
			continue
		}
		for _, imp := range p.Imports {
			if slices.Contains(Forbidden, imp) {
				problems = append(problems, fmt.Sprintf("%s imports %s", p.ImportPath, imp))
			}
		}
		for _, f := range p.GoFiles {
			ps, err := scan(filepath.Join(p.Dir, f))
			if err != nil {
				return nil, err
			}
			problems = append(problems, ps...)
		}
	}
	return problems, nil
}

// scan reports go statements and clock reads in one source file.
func scan(path string) ([]string, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, 0)
	if err != nil {
		return nil, err
	}
	timeName := ""
	for _, imp := range f.Imports {
		if imp.Path.Value == `"time"` {
			timeName = "time"
			if imp.Name != nil {
				timeName = imp.Name.Name
			}
		}
	}
	var problems []string
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.GoStmt:
			problems = append(problems, fmt.Sprintf("%s: go statement", fset.Position(n.Pos())))
		case *ast.SelectorExpr:
			if id, ok := n.X.(*ast.Ident); ok && timeName != "" && id.Name == timeName && slices.Contains(clockFuncs, n.Sel.Name) {
				problems = append(problems, fmt.Sprintf("%s: time.%s reads the clock", fset.Position(n.Pos()), n.Sel.Name))
			}
		}
		return true
	})
	return problems, nil
}
