package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/flotilla-sim/flotilla/sim/traceview"
)

// traceMain is `flotilla trace FILE -o OUT.json|OUT.html`.
func traceMain(args []string) int {
	return traceCmd(args, os.Stdout, os.Stderr)
}

func traceCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("flotilla trace", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "output file: OUT.json for Chrome/Perfetto trace events, OUT.html for a space-time diagram")
	format := fs.String("format", "", "json or html (default: from the -o extension)")
	from := fs.Duration("from", 0, "only events at or after this virtual time")
	to := fs.Duration("to", 0, "only events up to this virtual time (0: to the end)")
	maxMsgs := fs.Int("max-arrows", traceview.DefaultMaxMessages, "html: draw at most this many message arrows")
	title := fs.String("title", "", "html: page title (default: the trace file name)")
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintln(w, "usage: flotilla trace FILE -o OUT.json|OUT.html [flags]")
		fmt.Fprintln(w, "\nConverts a trace written by 'flotilla sim -seed N -trace FILE' into")
		fmt.Fprintln(w, "Chrome/Perfetto trace events (open in https://ui.perfetto.dev or chrome://tracing)")
		fmt.Fprintln(w, "or a self-contained HTML space-time diagram (open in any browser, offline).")
		fmt.Fprintln(w, "\nFlags:")
		fs.PrintDefaults()
	}
	// Flags may come before or after the file name.
	var files []string
	rest := args
	for {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	usageErr := func(msg string) int {
		fmt.Fprintln(stderr, "flotilla trace:", msg)
		fs.Usage()
		return 2
	}
	if len(files) != 1 {
		return usageErr("want exactly one trace file")
	}
	if *out == "" {
		return usageErr("-o is required")
	}
	kind := *format
	if kind == "" {
		switch strings.ToLower(filepath.Ext(*out)) {
		case ".json":
			kind = "json"
		case ".html", ".htm":
			kind = "html"
		default:
			return usageErr(fmt.Sprintf("cannot tell the format of %q: name it .json or .html, or give -format", *out))
		}
	}
	if kind != "json" && kind != "html" {
		return usageErr(fmt.Sprintf("unknown -format %q (want json or html)", kind))
	}
	if *from < 0 || *to < 0 || (*to > 0 && *to < *from) || *maxMsgs < 1 {
		return usageErr("-from and -to must be non-negative with -to after -from, -max-arrows positive")
	}
	if *title == "" {
		*title = filepath.Base(files[0])
	}
	if err := convertTrace(files[0], *out, kind, *from, *to, traceview.HTMLOptions{Title: *title, MaxMessages: *maxMsgs}); err != nil {
		fmt.Fprintln(stderr, "flotilla trace:", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote %s\n", *out)
	return 0
}

func convertTrace(in, out, kind string, from, to time.Duration, opts traceview.HTMLOptions) (err error) {
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	tr, err := traceview.Read(f)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	if from > 0 || to > 0 {
		tr = tr.Window(from, to)
	}
	return writeFile(out, func(w io.Writer) error {
		if kind == "json" {
			return traceview.WriteChrome(w, tr)
		}
		return traceview.WriteHTML(w, tr, opts)
	})
}
