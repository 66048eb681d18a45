package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/enospc/enospc/churn"
	"github.com/enospc/enospc/host"
	"github.com/enospc/enospc/internal/quote"
)

func newChurnCmd(newHost func() *host.Host) *cobra.Command {
	var (
		o           churn.Options
		steps       []string
		output      string
		stepsCSV    string
		samplesCSV  string
		cleanupOnly bool
		all         bool
		progress    bool
		plotDir     string
		plotFormat  string
	)
	cmd := &cobra.Command{
		Use:   "churn --runtime containerd|cri|docker|runc [flags] [-- COMMAND ARGS...]",
		Short: "Run the container lifecycle loop against a runtime and measure what each cycle leaks",
		Long: `churn drives a real runtime through the loop of containerd#2421 (run,
pause, resume, kill, delete), cycle after cycle, and every --sample-every
cycles reads every limit as check does, plus the runtime's own footprint
(daemon fds, threads, RSS, live shims, files under its state directories).
At the end it estimates each series' growth per cycle (Theil-Sen, with a
rank-based confidence interval), the cycles until it runs out, and says
what leaks. Every step attempt goes to the steps CSV, every sample to the
samples CSV.

containerd is driven through its Go client in a namespace of its own
(created, labelled, and removed at the end), with each task's stdio through
fifos as ctr makes them; dockerd through the Engine API, its containers
labelled as churn's; a CRI server (containerd's CRI plugin, CRI-O) as
kubelet calls it, a pod per cycle on the node's network; runc through its
command line on --bundle.
Everything churn made is removed at the end, on Ctrl-C, and by
--cleanup-only; containers it did not make are never touched.

Exit status: 0 no leak, 1 a leak, 2 the loop itself failed (a cycle given
up after its retries, the runtime unreachable), 3 a usage error.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch output {
			case "table", "json":
			default:
				return &exitError{3, fmt.Errorf("-o %q: want table or json", output)}
			}
			if plotFormat != "png" && plotFormat != "svg" {
				return &exitError{3, fmt.Errorf("--plot-format %q: want png or svg", plotFormat)}
			}
			o.Args = args
			if cmd.Flags().Changed("steps") {
				o.Steps = steps
			}
			o.Runc.Root = o.Containerd.RuncRoot
			o.CRI.State, o.CRI.Root = o.Containerd.State, o.Containerd.Root
			h := newHost()
			ctx := cmd.Context()
			if cleanupOnly {
				if err := churn.Cleanup(ctx, h, o); err != nil {
					return &exitError{churnCode(err), err}
				}
				return nil
			}
			if progress {
				o.Progress = cmd.ErrOrStderr()
			}
			stamp := time.Now().UTC().Format("20060102T150405Z")
			if stepsCSV == "" {
				stepsCSV = fmt.Sprintf("churn-%s-%s-steps.csv", o.Runtime, stamp)
			}
			if samplesCSV == "" {
				samplesCSV = fmt.Sprintf("churn-%s-%s-samples.csv", o.Runtime, stamp)
			}
			sf, err := os.Create(stepsCSV)
			if err != nil {
				return &exitError{3, err}
			}
			defer sf.Close()
			mf, err := os.Create(samplesCSV)
			if err != nil {
				return &exitError{3, err}
			}
			defer mf.Close()
			o.StepsCSV, o.SamplesCSV = sf, mf
			res, err := churn.Run(ctx, h, o)
			if err != nil {
				return &exitError{churnCode(err), err}
			}
			res.StepsCSV, res.SamplesCSV = stepsCSV, samplesCSV
			if err := sf.Close(); err != nil {
				return &exitError{2, err}
			}
			if err := mf.Close(); err != nil {
				return &exitError{2, err}
			}
			if plotDir != "" {
				files, err := res.WritePlots(plotDir, plotFormat)
				for _, f := range files {
					fmt.Fprintln(cmd.ErrOrStderr(), "plot:", quote.Terminal(f))
				}
				if err != nil {
					fmt.Fprintln(cmd.ErrOrStderr(), "enospc:", quote.Terminal(err.Error()))
				}
			}
			out := cmd.OutOrStdout()
			if output == "json" {
				if err := writeJSON(out, res); err != nil {
					return &exitError{2, err}
				}
			} else {
				writeChurnTable(out, res, all)
			}
			if res.Cleanup != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), "enospc: cleanup:", quote.Terminal(res.Cleanup.Error()))
			}
			if res.Leftovers > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "enospc: the runtime left %d fifo directories of churn's tasks (the leak measured), kept for inspection; --cleanup-only removes them\n", res.Leftovers)
			}
			if res.ShimSockets > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "enospc: containerd left %d sockets of the killed shims in %s (an inode of /run each), removed\n", res.ShimSockets, churn.ShimSocketDir)
			}
			if res.Failed != "" {
				fmt.Fprintln(cmd.ErrOrStderr(), "enospc: loop failed:", quote.Terminal(res.Failed))
			}
			if code := res.ExitCode(); code != 0 {
				return &exitError{code, nil}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Runtime, "runtime", "", "the runtime to drive: containerd, cri, docker or runc")
	f.IntVar(&o.Cycles, "cycles", 100, "cycles to run")
	f.StringSliceVar(&steps, "steps", churn.DefaultSteps, "the steps of a cycle, in order: run first, delete included (cri: run,kill,delete, the CRI has no pause)")
	f.IntVar(&o.Parallel, "parallel", 1, "cycles run at once")
	f.IntVar(&o.SampleEvery, "sample-every", 10, "cycles between two samples of every limit")
	f.StringSliceVar(&o.Only, "only", nil, "sample only these limit IDs (the runtime's footprint is always read)")
	f.StringVar(&o.Fault, "fault", "", "inject a fault each cycle: kill-shim (SIGKILL the task's shim in place of the kill step)")
	f.IntVar(&o.Retries, "retries", 10, "retries of a failed step before its cycle is given up (-1: none)")
	f.StringVar(&o.Image, "image", "", "the image of the containers: containerd pulls it into churn's namespace unless --image-tar brings it; docker must hold it")
	f.StringVar(&o.Containerd.ImageTar, "image-tar", "", "an image archive (OCI layout or docker save) imported into churn's namespace first")
	f.StringVar(&o.Containerd.Address, "address", "/run/containerd/containerd.sock", "containerd's socket")
	f.StringVar(&o.Containerd.Namespace, "namespace", "enospc-churn", "the containerd namespace churn creates, works in and removes")
	f.StringVar(&o.Containerd.Snapshotter, "snapshotter", "overlayfs", "containerd snapshotter of the containers")
	f.StringVar(&o.Containerd.RuncRoot, "runc-root", "", "runc's state directory (containerd's shim option, and runc's --root; default each one's own)")
	f.StringVar(&o.Containerd.FifoDir, "fifo-dir", "/run/containerd/fifo", "where the client makes each task's fifo directory, as ctr --fifo-dir")
	f.StringVar(&o.Containerd.State, "containerd-state", "/run/containerd", "containerd's state directory")
	f.StringVar(&o.Containerd.Root, "containerd-root", "/var/lib/containerd", "containerd's root directory")
	dockerHost := "/var/run/docker.sock"
	if h := os.Getenv("DOCKER_HOST"); strings.HasPrefix(h, "unix://") {
		dockerHost = h
	}
	f.StringVar(&o.Docker.Host, "docker-host", dockerHost, "dockerd's Engine API socket (default from DOCKER_HOST)")
	f.StringVar(&o.Docker.Root, "docker-root", "/var/lib/docker", "dockerd's --data-root")
	f.StringVar(&o.Docker.Exec, "docker-exec-root", "/run/docker", "dockerd's --exec-root")
	f.StringVar(&o.Docker.CgroupParent, "docker-cgroup-parent", "/docker", "dockerd's --cgroup-parent (cgroupfs driver), where its containers' memory cgroups are counted")
	f.StringVar(&o.CRI.Endpoint, "cri-endpoint", "/run/containerd/containerd.sock", "the CRI's socket (containerd's, or CRI-O's /var/run/crio/crio.sock)")
	f.StringVar(&o.CRI.CgroupParent, "cri-cgroup-parent", "/enospc-churn", "the cgroup parent of the pods churn runs through the CRI")
	f.StringVar(&o.Runc.Bundle, "bundle", "", "the OCI bundle of every runc container")
	f.StringVar(&o.Runc.Binary, "runc", "runc", "runc's binary")
	f.StringVar(&stepsCSV, "steps-csv", "", "where the steps CSV goes (default churn-RUNTIME-TIME-steps.csv)")
	f.StringVar(&samplesCSV, "samples-csv", "", "where the samples CSV goes (default churn-RUNTIME-TIME-samples.csv)")
	f.StringVarP(&output, "output", "o", "table", "output: table or json")
	f.BoolVar(&cleanupOnly, "cleanup-only", false, "remove what earlier runs of churn left (containers, tasks, snapshots, images, its namespace) and exit")
	f.BoolVar(&all, "all", false, "table: every series measured, not only those that moved")
	f.StringVar(&plotDir, "plot", "", "write a chart of every leaking series (use and max by cycle, and the projection) into this directory")
	f.StringVar(&plotFormat, "plot-format", "png", "the charts' format: png or svg")
	f.BoolVar(&progress, "progress", false, "a line on stderr per sample")
	f.DurationVar(&o.FamilyTimeout, "family-timeout", 0, "give up on one family of limits whose read blocks, in a sample (default check's)")
	f.Float64Var(&o.MinPerCycle, "min-per-cycle", 0.5, "the smallest growth per cycle called a leak (bytes series: --min-bytes-per-cycle)")
	f.Float64Var(&o.MinBytesPerCycle, "min-bytes-per-cycle", 4096, "the smallest growth per cycle called a leak in a series counted in bytes")
	return cmd
}

// churnCode is the exit status of a churn that could not run: 3 for what
// the options say, 2 for a runtime that could not be driven.
func churnCode(err error) int {
	if errors.Is(err, churn.ErrOptions) {
		return 3
	}
	return 2
}

func writeChurnTable(w io.Writer, r *churn.Result, all bool) {
	rate := ""
	if s := r.Elapsed.Seconds(); s > 0 {
		rate = fmt.Sprintf(", %.2f cycles/s", float64(r.Cycles)/s)
	}
	fmt.Fprintf(w, "runtime %s: %d cycles in %s%s; %d step attempts, %d failed (retries counted), %d cycles given up\n",
		r.Runtime, r.Cycles, r.Elapsed.Round(time.Millisecond), rate, r.Steps, r.Errors, r.GivenUp)
	if r.Elapsed > 0 {
		fmt.Fprintf(w, "sampling: %d samples, %s (%.1f%% of the loop)\n", r.Samples, r.Sampling.Round(time.Millisecond),
			100*r.Sampling.Seconds()/r.Elapsed.Seconds())
	}
	series := append([]*churn.Series(nil), r.Series...)
	sort.SliceStable(series, func(i, j int) bool {
		if series[i].Leaking != series[j].Leaking {
			return series[i].Leaking
		}
		if series[i].Limit != series[j].Limit {
			return series[i].Limit < series[j].Limit
		}
		return series[i].Scope < series[j].Scope
	})
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "LIMIT\tSCOPE\tFIRST\tLAST\tPER CYCLE\t95% CI\tCYCLES LEFT\tVERDICT")
	shown := 0
	for _, s := range series {
		moved := s.Slope.PerCycle != 0 || s.Slope.Lo != 0 || s.Slope.Hi != 0
		always := strings.HasPrefix(s.Limit, "runtime.") || strings.HasPrefix(s.Limit, "leak.") || strings.HasPrefix(s.Limit, "cgroups")
		if !all && !s.Leaking && !moved && !always {
			continue
		}
		verdict := "no leak"
		if s.Leaking {
			verdict = "LEAK"
		}
		left := "-"
		if s.Exhaustion >= 0 {
			left = strconv.FormatInt(s.Exhaustion, 10)
		}
		first, last := s.Points[0], s.Points[len(s.Points)-1]
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t[%s, %s]\t%s\t%s\n", s.Limit, quote.Terminal(s.Scope), first.Used, last.Used,
			num(s.Slope.PerCycle), num(s.Slope.Lo), num(s.Slope.Hi), left, verdict)
		shown++
	}
	tw.Flush()
	if hidden := len(series) - shown; hidden > 0 {
		fmt.Fprintf(w, "(%d more series did not move; --all lists them)\n", hidden)
	}
	fmt.Fprintf(w, "steps: %s\nsamples: %s\n", quote.Terminal(r.StepsCSV), quote.Terminal(r.SamplesCSV))
}

func num(v float64) string {
	return strconv.FormatFloat(v, 'g', 4, 64)
}
