// Command traffic is the traffic-light controller, running the same
// trafficfsm.Controller the simulator checks, on real UDP sockets.
//
//	traffic [-ew ADDR] [-ns ADDR] [-button PORT] [-speed F] [-clearance D] [-v]
//
// It commands the East-West light at -ew (default localhost:10000) and the
// North-South light at -ns (default localhost:11000) with single datagrams
// "R", "Y" and "G", re-sent every second, and listens for the button's
// "press" datagrams on UDP port -button (default 12000). With -speed F its
// clock runs F times faster (the cycle takes 100/F seconds instead of 100).
// Every state change is logged. Ctrl-C ends it.
//
// It starts with both lights red for the clearance interval, then begins
// the cycle with East-West green; see package trafficfsm.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/flotilla-sim/flotilla/runtime"
	"github.com/flotilla-sim/flotilla/sim"
	"github.com/flotilla-sim/flotilla/trafficfsm"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stderr))
}

func run(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("traffic", flag.ContinueOnError)
	fs.SetOutput(stderr)
	ew := fs.String("ew", "localhost:10000", "UDP address of the East-West light")
	ns := fs.String("ns", "localhost:11000", "UDP address of the North-South light")
	button := fs.String("button", "12000", "UDP port (or HOST:PORT) to receive button presses on")
	speed := fs.Float64("speed", 1, "run the controller's clock `F` times faster than real time")
	clearance := fs.Duration("clearance", trafficfsm.DefaultConfig().Clearance, "all-red interval at start-up, in controller time")
	verbose := fs.Bool("v", false, "log debug messages (dropped datagrams, every observation)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: traffic [-ew ADDR] [-ns ADDR] [-button PORT] [-speed F] [-clearance D] [-v]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "traffic: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	if !(*speed > 0) || math.IsInf(*speed, 0) {
		fmt.Fprintf(stderr, "traffic: -speed must be a positive number, not %v\n", *speed)
		return 2
	}
	cfg := trafficfsm.DefaultConfig()
	if *clearance < cfg.Yellow {
		fmt.Fprintf(stderr, "traffic: -clearance %v is shorter than the yellow time %v\n", *clearance, cfg.Yellow)
		return 2
	}
	cfg.Clearance = *clearance
	listen, err := listenAddr(*button)
	if err != nil {
		fmt.Fprintf(stderr, "traffic: -button: %v\n", err)
		return 2
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if err := control(ctx, log, cfg, listen, *ew, *ns, *speed); err != nil {
		log.Error("traffic controller stopped", "err", err)
		return 1
	}
	return 0
}

// listenAddr turns a -button value (a port, or HOST:PORT) into a listen
// address.
func listenAddr(s string) (string, error) {
	if p, err := strconv.ParseUint(s, 10, 16); err == nil {
		return ":" + strconv.FormatUint(p, 10), nil
	}
	if _, _, err := net.SplitHostPort(s); err != nil {
		return "", fmt.Errorf("%q is neither a port nor HOST:PORT", s)
	}
	return s, nil
}

// control runs the controller until ctx ends.
func control(ctx context.Context, log *slog.Logger, cfg trafficfsm.Config, listen, ew, ns string, speed float64) error {
	udp, err := runtime.ListenUDP(runtime.UDPConfig{
		Listen: listen,
		Peers:  map[sim.NodeID]string{cfg.EW: ew, cfg.NS: ns},
		Codec:  trafficfsm.Codec{},
		Logger: log,
	})
	if err != nil {
		return fmt.Errorf("listening for the button: %w", err)
	}
	log.Info("traffic controller starting", "ew", ew, "ns", ns, "button", udp.LocalAddr().String(),
		"speed", speed, "clearance", cfg.Clearance)
	start := time.Now()
	// The controller's own clock: what Event.Now shows, for the logs.
	clock := func() time.Duration {
		return time.Duration(float64(time.Since(start)) * speed).Round(time.Millisecond)
	}
	err = runtime.Run(ctx, runtime.Config{
		ID:        trafficfsm.ControllerID,
		Machine:   trafficfsm.NewController(cfg),
		Transport: udp,
		Speed:     speed,
		Logger:    log,
		OnObserve: func(o any) {
			switch o := o.(type) {
			case trafficfsm.State:
				log.Info("state", "phase", o.Phase.String(), "ew", o.EW.String(), "ns", o.NS.String(), "t", clock())
			case trafficfsm.PressSeen:
				log.Info("press", "phase", o.Phase.String(), "in_phase", o.InPhase.Round(time.Millisecond),
					"counted", o.Counted, "t", clock())
			}
		},
	})
	if err != nil {
		return fmt.Errorf("running the controller: %w", err)
	}
	log.Info("traffic controller stopped")
	return nil
}
