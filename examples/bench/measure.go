package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/migrationworks/terraform-provider-migration/internal/engine/testenv"
)

// bench holds what every measurement shares.
type bench struct {
	src, dst *testenv.Postgres
	// oursDst, while set, holds oursCDCDB: during the CDC catch-ups each
	// copy has a target cluster to itself, as native's had in the anchors,
	// rather than one evicting the other's pages from shared_buffers.
	oursDst     *testenv.Postgres
	work        string // scratch directory, removed at the end
	cliConfig   string // TF_CLI_CONFIG_FILE pointing terraform at the built provider
	parallelism int
}

// measure is the one timing helper: it checkpoints the clusters, so that no
// measurement pays for writing out what the previous one left dirty, then
// times f.
func (b *bench) measure(ctx context.Context, f func() error) (time.Duration, error) {
	if err := b.checkpoint(ctx); err != nil {
		return 0, err
	}
	t0 := time.Now()
	err := f()
	return time.Since(t0), err
}

// checkpoint makes every cluster write out its dirty pages now, and the
// kernel write them to disk (the clusters run with fsync off: a checkpoint
// alone leaves them to the kernel's background writeback).
func (b *bench) checkpoint(ctx context.Context) error {
	for _, pg := range []*testenv.Postgres{b.src, b.dst, b.oursDst} {
		if pg == nil {
			continue
		}
		if err := pg.Exec(ctx, "postgres", "CHECKPOINT"); err != nil {
			return fmt.Errorf("checkpoint before a measurement: %w", err)
		}
	}
	syscall.Sync()
	return nil
}

// target is the cluster that holds database db on the target side.
func (b *bench) target(db string) *testenv.Postgres {
	if db == oursCDCDB && b.oursDst != nil {
		return b.oursDst
	}
	return b.dst
}

// terraformEnv runs terraform against the built provider, without the
// version check that would add a network round trip to its start-up.
func (b *bench) terraformEnv() []string {
	return append(os.Environ(), "TF_CLI_CONFIG_FILE="+b.cliConfig, "TF_IN_AUTOMATION=1", "CHECKPOINT_DISABLE=1")
}

// freshDatabase drops and re-creates database db on pg.
func freshDatabase(ctx context.Context, pg *testenv.Postgres, db string) error {
	if err := pg.Exec(ctx, "postgres", "DROP DATABASE IF EXISTS "+pgx.Identifier{db}.Sanitize()+" WITH (FORCE)"); err != nil {
		return err
	}
	return pg.CreateDatabase(ctx, db)
}

// dropDatabase frees the target's disk and stops its autovacuum before the
// next measurement.
func dropDatabase(ctx context.Context, pg *testenv.Postgres, db string) error {
	return pg.Exec(ctx, "postgres", "DROP DATABASE IF EXISTS "+pgx.Identifier{db}.Sanitize()+" WITH (FORCE)")
}

// scalar returns the one value sql selects on db, as text.
func scalar(ctx context.Context, pg *testenv.Postgres, db, sql string, args ...any) (string, error) {
	conn, err := pgx.Connect(ctx, pg.SuperuserDSN(db))
	if err != nil {
		return "", err
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	var v *string
	if err := conn.QueryRow(ctx, sql, args...).Scan(&v); err != nil {
		return "", fmt.Errorf("%s: %w", sql, err)
	}
	if v == nil {
		return "", nil
	}
	return *v, nil
}

// command runs name in dir and returns its combined output.
func command(ctx context.Context, dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// pipeline runs `from | to` through a kernel pipe, as a shell would.
func pipeline(ctx context.Context, from, to []string) error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	var fromErr, toErr bytes.Buffer
	a := exec.CommandContext(ctx, from[0], from[1:]...)
	a.Stdout, a.Stderr = w, &fromErr
	z := exec.CommandContext(ctx, to[0], to[1:]...)
	z.Stdin, z.Stderr = r, &toErr
	errA := a.Start()
	errZ := z.Start()
	// The children hold their own ends; the reader sees EOF when the writer exits.
	_ = w.Close()
	_ = r.Close()
	if errA == nil {
		errA = a.Wait()
	}
	if errZ == nil {
		errZ = z.Wait()
	}
	if errA != nil {
		return fmt.Errorf("%s: %w\n%s", from[0], errA, fromErr.String())
	}
	if errZ != nil {
		return fmt.Errorf("%s: %w\n%s", to[0], errZ, toErr.String())
	}
	return nil
}

// lastLines is the end of a long output, for error messages.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// memPeak is what sampleMemory saw of the provider processes.
type memPeak struct {
	hwmKiB int64   // highest VmHWM (the kernel's own peak RSS) of any of them
	rssKiB int64   // highest VmRSS sampled
	procs  int     // how many provider processes were seen
	each   []int64 // peak (KiB) of each of them, in the order they were first seen
}

func (m memPeak) MiB() float64 { return float64(max(m.hwmKiB, m.rssKiB)) / 1024 }

// String lists the peak of each provider process, in MiB: terraform starts
// one per phase, so it tells which phase peaked.
func (m memPeak) String() string {
	each := make([]string, len(m.each))
	for i, kib := range m.each {
		each[i] = strconv.FormatFloat(float64(kib)/1024, 'f', 1, 64)
	}
	return strings.Join(each, ", ") + " MiB"
}

// sampleMemory samples, every interval, the memory of each process called
// name that descends from process root, until stop is called. Terraform
// starts the provider afresh for each phase, so every process seen counts.
func sampleMemory(root int, name string, every time.Duration) (stop func() memPeak) {
	var (
		peak memPeak
		seen = map[int]int{} // pid → index in peak.each
		done = make(chan struct{})
		wg   sync.WaitGroup
	)
	sample := func() {
		for _, pid := range descendants(root) {
			if !processNamed(pid, name) {
				continue
			}
			hwm, rss, ok := processMemory(pid)
			if !ok {
				continue
			}
			i, ok := seen[pid]
			if !ok {
				i = len(peak.each)
				seen[pid] = i
				peak.each = append(peak.each, 0)
			}
			peak.each[i] = max(peak.each[i], hwm, rss)
			peak.hwmKiB, peak.rssKiB = max(peak.hwmKiB, hwm), max(peak.rssKiB, rss)
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			sample()
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() memPeak {
		close(done)
		wg.Wait()
		peak.procs = len(seen)
		return peak
	}
}

// descendants lists the processes below root, walking the parent ids in
// /proc/*/stat.
func descendants(root int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	kids := map[int][]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, ok := parentOf(pid); ok {
			kids[ppid] = append(kids[ppid], pid)
		}
	}
	var out []int
	for queue := kids[root]; len(queue) > 0; queue = queue[1:] {
		out = append(out, queue[0])
		queue = append(queue, kids[queue[0]]...)
	}
	return out
}

// parentOf reads the parent id from /proc/PID/stat: "pid (comm) state ppid ...",
// where comm may hold spaces and parentheses.
func parentOf(pid int) (int, bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 2 {
		return 0, false
	}
	ppid, err := strconv.Atoi(f[1])
	return ppid, err == nil
}

// processNamed compares the base name of argv[0]: the kernel's comm is cut
// to 15 characters ("terraform-provi").
func processNamed(pid int, name string) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	argv0, _, _ := bytes.Cut(data, []byte{0})
	return filepath.Base(string(argv0)) == name
}

// processMemory reads VmHWM and VmRSS (KiB) from /proc/PID/status.
func processMemory(pid int) (hwm, rss int64, ok bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0, false
	}
	for line := range strings.Lines(string(data)) {
		key, value, found := strings.Cut(line, ":")
		if !found || (key != "VmHWM" && key != "VmRSS") {
			continue
		}
		f := strings.Fields(value) // "12345 kB"
		if len(f) == 0 {
			continue
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		if key == "VmHWM" {
			hwm = n
		} else {
			rss = n
		}
		ok = true
	}
	return hwm, rss, ok
}

// apply times `terraform apply -auto-approve` in dir, terraform's start-up
// included, sampling the provider's memory every 50 ms.
func (b *bench) apply(ctx context.Context, dir string) (time.Duration, memPeak, error) {
	var (
		out bytes.Buffer
		mem memPeak
	)
	took, err := b.measure(ctx, func() error {
		cmd := exec.CommandContext(ctx, "terraform", "apply", "-auto-approve", "-no-color", "-input=false")
		cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = dir, b.terraformEnv(), &out, &out
		if err := cmd.Start(); err != nil {
			return err
		}
		stop := sampleMemory(cmd.Process.Pid, providerName, 50*time.Millisecond)
		err := cmd.Wait()
		mem = stop()
		return err
	})
	if err != nil {
		return 0, memPeak{}, fmt.Errorf("terraform apply: %w\n%s", err, lastLines(out.String(), 40))
	}
	if mem.procs == 0 {
		return 0, memPeak{}, errors.New("no " + providerName + " process was seen under terraform: its memory is unknown")
	}
	return took, mem, nil
}
