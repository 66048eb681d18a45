//go:build lab

// Package servelab is `enospc serve` end to end on the real kernel: the
// built binary serves a host on which a private tmpfs runs out of inodes,
// Debian's real Prometheus scrapes it and evaluates the shipped alert rules
// (deploy/prometheus/enospc-alerts.yaml), and Debian's real Chromium loads
// the page. It asserts what an operator sees: the series at used == max,
// EnospcLimitNearlyExhausted firing for that mount, and the mount's row at
// the top of the page.
//
// Every process is the test's own (its own Prometheus with its own storage
// in a temp dir, on free loopback ports; never a packaged service), every
// wait is bounded, and everything is killed, unmounted and removed even when
// the test fails.
package servelab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/enospc/enospc/lab/labkit"
)

func TestMain(m *testing.M) { labkit.Main(m) }

const (
	prometheusBin = "/usr/bin/prometheus"
	promtoolBin   = "/usr/bin/promtool"
	chromiumBin   = "/usr/bin/chromium"

	// alertsFile is the shipped rules file, from this package's directory.
	alertsFile = "../../deploy/prometheus/enospc-alerts.yaml"
	// jobName is the scrape job of the deploy/ examples.
	jobName = "enospc"

	nrInodes = 200
	source   = "enospc-lab-serve"

	// fireWithin bounds the time from ENOSPC to the alert firing: scrape
	// 1s + serve's check interval 1s + evaluation 1s + the shortened for: 5s, with
	// room for a loaded machine.
	fireWithin = 60 * time.Second
)

func TestServePrometheusAlertsAndPage(t *testing.T) {
	for _, p := range []string{prometheusBin, promtoolBin} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("LAB CANNOT RUN: %s is missing: install prometheus (apt-get install prometheus; scripts/test must install it)", p)
		}
	}
	rules := shortenedRules(t)

	serveAddr := labkit.FreeAddr(t)
	serveURL := "http://" + serveAddr
	startProcess(t, "enospc serve", labkit.Bin(), "serve", "--listen", serveAddr, "--interval", "1s", "--no-runtimes", "--history-dir", "")
	waitFor(t, "enospc serve /healthz", 30*time.Second, func() (bool, string) {
		b, err := get(serveURL + "/healthz")
		return err == nil && strings.TrimSpace(string(b)) == "ok", fmt.Sprintf("%q %v", b, err)
	})

	promAddr := labkit.FreeAddr(t)
	promURL := "http://" + promAddr
	promDir := t.TempDir()
	config := filepath.Join(promDir, "prometheus.yml")
	writeFile(t, config, fmt.Sprintf(`# The lab's own Prometheus: scrape enospc serve every 1s, evaluate every 1s.
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - %q
scrape_configs:
  - job_name: %s
    static_configs:
      - targets: [%q]
`, rules, jobName, serveAddr))
	startProcess(t, "prometheus", prometheusBin,
		"--config.file="+config,
		"--storage.tsdb.path="+filepath.Join(promDir, "data"),
		"--web.listen-address="+promAddr,
		"--log.level=warn")
	waitFor(t, "prometheus scraping enospc serve (target up)", 60*time.Second, func() (bool, string) {
		var targets struct {
			ActiveTargets []struct {
				Labels    map[string]string `json:"labels"`
				Health    string            `json:"health"`
				LastError string            `json:"lastError"`
			} `json:"activeTargets"`
		}
		if err := promAPI(promURL+"/api/v1/targets?state=active", &targets); err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, tg := range targets.ActiveTargets {
			if tg.Labels["job"] == jobName && tg.Labels["instance"] == serveAddr && tg.Health == "up" {
				return true, ""
			}
			seen = append(seen, fmt.Sprintf("%v %s %q", tg.Labels, tg.Health, tg.LastError))
		}
		return false, fmt.Sprintf("targets: %v", seen)
	})
	var groups struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Name  string `json:"name"`
				Query string `json:"query"`
				Type  string `json:"type"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := promAPI(promURL+"/api/v1/rules", &groups); err != nil {
		t.Fatalf("prometheus rules: %v", err)
	}
	loaded := map[string]bool{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			t.Logf("rule loaded: group %q %s %s: %s", g.Name, r.Type, r.Name, r.Query)
			loaded[r.Name] = true
		}
	}
	for _, want := range []string{"EnospcLimitNearlyExhausted", "EnospcLimitExhaustionPredicted", "EnospcCheckFailing"} {
		if !loaded[want] {
			t.Errorf("prometheus did not load alert %s from %s", want, alertsFile)
		}
	}

	// The private tmpfs, empty: one inode (its root) of nrInodes.
	dir := labkit.MountTmpfs(t, source, fmt.Sprintf("size=64m,nr_inodes=%d,mode=0755", nrInodes))
	scope := fmt.Sprintf("%s (tmpfs %s)", dir, source)
	sel := fmt.Sprintf(`{limit="inodes",scope=~%s}`, strconv.Quote(".*"+regexp.QuoteMeta(dir)+".*"))
	t.Logf("tmpfs %s, scope %q, selector %s", dir, scope, sel)

	// Before: Prometheus has the mount's series, far from full, and the
	// alert is not firing for it.
	waitFor(t, "the empty tmpfs's series in prometheus", 30*time.Second, func() (bool, string) {
		used, max, err := usedMax(promURL, sel, scope)
		return err == nil && max == nrInodes, fmt.Sprintf("used %v max %v: %v", used, max, err)
	})
	used, mx, _ := usedMax(promURL, sel, scope)
	t.Logf("before: prometheus has enospc_limit_used %v enospc_limit_max %v", used, mx)
	if used >= mx {
		t.Fatalf("the empty tmpfs is already full in prometheus: used %v max %v", used, mx)
	}
	if a, ok := alertFor(t, promURL, "EnospcLimitNearlyExhausted", scope); ok {
		t.Fatalf("EnospcLimitNearlyExhausted is already %s for the empty tmpfs: %v", a.State, a.Labels)
	}

	// Exhaust it: empty files until the kernel refuses (bounded).
	created, lastErr := 0, error(nil)
	for i := 0; i < 10*nrInodes; i++ {
		f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("f%05d", i)), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			lastErr = err
			break
		}
		f.Close()
		created++
	}
	if !errors.Is(lastErr, syscall.ENOSPC) {
		t.Fatalf("created %d files on a tmpfs with nr_inodes=%d, then %v: want ENOSPC", created, nrInodes, lastErr)
	}
	exhausted := time.Now()
	t.Logf("created %d files, then: %v", created, lastErr)

	t.Run("prometheus", func(t *testing.T) {
		var alert promAlert
		var seenPending bool
		waitFor(t, "enospc_limit_used == enospc_limit_max and EnospcLimitNearlyExhausted firing for "+scope, fireWithin, func() (bool, string) {
			used, max, err := usedMax(promURL, sel, scope)
			if err != nil {
				return false, err.Error()
			}
			a, ok := alertFor(t, promURL, "EnospcLimitNearlyExhausted", scope)
			seenPending = seenPending || a.State == "pending"
			alert = a
			state := "absent"
			if ok {
				state = a.State
			}
			return used == nrInodes && max == nrInodes && a.State == "firing",
				fmt.Sprintf("used %v max %v, alert %s", used, max, state)
		})
		t.Logf("after %s: prometheus has enospc_limit_used == enospc_limit_max == %d for %q", time.Since(exhausted).Round(time.Second), nrInodes, scope)
		t.Logf("EnospcLimitNearlyExhausted firing (pending seen: %v), active since %s: labels %v, annotations %v, value %s",
			seenPending, alert.ActiveAt, alert.Labels, alert.Annotations, alert.Value)
		if alert.Labels["limit"] != "inodes" {
			t.Errorf("the alert's limit label is %q, want inodes", alert.Labels["limit"])
		}
		// Every alert Prometheus holds, for the record.
		var all struct {
			Alerts []promAlert `json:"alerts"`
		}
		if err := promAPI(promURL+"/api/v1/alerts", &all); err == nil {
			for _, a := range all.Alerts {
				t.Logf("alert %s %s %v", a.Labels["alertname"], a.State, a.Labels)
			}
		}
	})

	t.Run("page", func(t *testing.T) {
		if _, err := os.Stat(chromiumBin); err != nil {
			t.Fatalf("LAB CANNOT RUN: %s is missing: install chromium (scripts/test does)", chromiumBin)
		}
		// The page reads the server's snapshot; wait until it has the
		// full mount (checked every 1s) so that the page shows the same.
		waitFor(t, "enospc serve's /api/v1/check to show the full tmpfs", 30*time.Second, func() (bool, string) {
			var rep struct {
				Findings []struct {
					Limit, Scope, Severity string
					Used, Max              uint64
				} `json:"findings"`
			}
			b, err := get(serveURL + "/api/v1/check")
			if err == nil {
				err = json.Unmarshal(b, &rep)
			}
			if err != nil {
				return false, err.Error()
			}
			for _, f := range rep.Findings {
				if f.Limit == "inodes" && f.Scope == scope {
					return f.Severity == "critical", fmt.Sprintf("%s %d/%d", f.Severity, f.Used, f.Max)
				}
			}
			return false, "no inodes row for " + scope
		})

		dom := chromium(t, "--virtual-time-budget=5000", "--dump-dom", serveURL+"/")
		if !regexp.MustCompile(`<body[^>]*\sdata-loaded="true"`).MatchString(dom) {
			t.Fatalf("the page never rendered (no data-loaded on body); DOM:\n%s", dom)
		}
		// Without --trace the failures section says tracing is off.
		sec := regexp.MustCompile(`(?s)<section id="failures"[^>]*>.*?</section>`).FindString(dom)
		if !strings.Contains(sec, `data-trace="off"`) || !strings.Contains(sec, "tracing is off") {
			t.Errorf("without --trace the failures section does not say tracing is off:\n%s", sec)
		}
		rows := pageRows(dom)
		t.Logf("the page has %d rows; the first ones:", len(rows))
		for i, r := range rows[:min(len(rows), 8)] {
			t.Logf("  %d. %s %s %q ratio %s", i+1, r["data-severity"], r["data-limit"], r["data-scope"], r["data-ratio"])
		}
		mine, firstOK, oks := -1, -1, 0
		for i, r := range rows {
			if mine < 0 && r["data-limit"] == "inodes" && r["data-scope"] == scope {
				mine = i
			}
			if r["data-severity"] == "ok" {
				oks++
				if firstOK < 0 {
					firstOK = i
				}
			}
		}
		switch {
		case mine < 0:
			t.Errorf("no row with data-limit=inodes and data-scope=%q on the page", scope)
		default:
			r := rows[mine]
			t.Logf("the tmpfs is row %d of %d: %v", mine+1, len(rows), r)
			if r["data-severity"] != "critical" || !strings.Contains(" "+r["class"]+" ", " critical ") {
				t.Errorf("the tmpfs's row is data-severity=%q class=%q, want critical", r["data-severity"], r["class"])
			}
			if r["data-ratio"] != "1.0000" {
				t.Errorf("the tmpfs's row has data-ratio=%q, want 1.0000", r["data-ratio"])
			}
			if oks == 0 {
				t.Errorf("the page has no ok row to be ordered against")
			} else if firstOK < mine {
				t.Errorf("worst first: the tmpfs's critical row is row %d, after the ok row %d (%v)", mine+1, firstOK+1, rows[firstOK])
			}
		}

		shot := filepath.Join(t.TempDir(), "enospc-serve.png")
		chromium(t, "--virtual-time-budget=5000", "--hide-scrollbars", "--window-size=1400,900", "--screenshot="+shot, serveURL+"/")
		b, err := os.ReadFile(shot)
		if err != nil || !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) {
			t.Fatalf("chromium wrote no PNG screenshot at %s: %v", shot, err)
		}
		const keep = "/tmp/enospc-serve-screenshot.png"
		if err := os.WriteFile(keep, b, 0o644); err != nil {
			t.Errorf("copy the screenshot to %s: %v", keep, err)
		}
		t.Logf("screenshot: %s (%d bytes), copied to %s", shot, len(b), keep)
	})
}

// shortenedRules writes a COPY of the shipped rules in which every `for:`
// is 5s and every group `interval:` is 1s, so that the alerts can fire in
// seconds; the expressions, labels and annotations are the shipped ones.
// promtool checks the copy.
func shortenedRules(t *testing.T) string {
	t.Helper()
	src, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatalf("LAB CANNOT RUN: the shipped alert rules are missing: %v", err)
	}
	forRe := regexp.MustCompile(`(?m)^(\s*(?:-\s+)?for:\s*)\S+`)
	intervalRe := regexp.MustCompile(`(?m)^(\s*(?:-\s+)?interval:\s*)\S+`)
	fors, intervals := len(forRe.FindAll(src, -1)), len(intervalRe.FindAll(src, -1))
	out := forRe.ReplaceAll(src, []byte("${1}5s"))
	out = intervalRe.ReplaceAll(out, []byte("${1}1s"))
	abs, _ := filepath.Abs(alertsFile)
	header := fmt.Sprintf("# A COPY of %s for the lab (lab/serve): every `for:` shortened to 5s\n"+
		"# (%d of them) and every group `interval:` to 1s (%d), so that the alerts fire\n"+
		"# within seconds. The expressions, labels and annotations are the shipped ones.\n", abs, fors, intervals)
	dst := filepath.Join(t.TempDir(), "enospc-alerts.yaml")
	writeFile(t, dst, header+string(out))
	t.Logf("rules: %s with %d for: set to 5s and %d interval: set to 1s", dst, fors, intervals)
	if fors == 0 {
		t.Logf("note: %s has no `for:`: its alerts fire on the first evaluation", alertsFile)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if b, err := exec.CommandContext(ctx, promtoolBin, "check", "rules", dst).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules on the copy of %s: %v\n%s", alertsFile, err, b)
	}
	return dst
}

// startProcess starts a long-running child, its output in a log file that
// is printed when the test fails; cleanup stops it with SIGTERM, then
// SIGKILL after 10s.
func startProcess(t *testing.T, name, bin string, args ...string) {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "output.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	t.Logf("started %s (pid %d): %s %s", name, cmd.Process.Pid, bin, strings.Join(args, " "))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		defer logf.Close()
		select {
		case err := <-done:
			t.Errorf("%s exited before the end of the test: %v", name, err)
		default:
			syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				select {
				case <-done:
				case <-time.After(10 * time.Second):
					t.Errorf("CLEANUP FAILED: %s (pid %d) survives SIGKILL", name, cmd.Process.Pid)
				}
			}
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("%s output:\n%s", name, tail(b, 4000))
		}
	})
}

// chromium runs Debian's Chromium headless with the flags this machine
// needs (a fresh profile, no background connections), bounded to 90s, and
// returns its stdout. Its whole process group is killed afterwards.
func chromium(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	flags := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, chromiumBin, append(flags, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // helpers it left behind
	}
	if err != nil {
		t.Fatalf("chromium %s: %v\nstderr:\n%s", strings.Join(args, " "), err, tail(stderr.Bytes(), 4000))
	}
	return stdout.String()
}

var (
	rowRe  = regexp.MustCompile(`<tr\s[^>]*>`)
	attrRe = regexp.MustCompile(`([a-zA-Z_:][-a-zA-Z0-9_:.]*)="([^"]*)"`)
)

// pageRows returns the attributes of the page's rows (tr.row), in order.
func pageRows(dom string) []map[string]string {
	var rows []map[string]string
	for _, tag := range rowRe.FindAllString(dom, -1) {
		attrs := map[string]string{}
		for _, m := range attrRe.FindAllStringSubmatch(tag, -1) {
			attrs[m[1]] = html.UnescapeString(m[2])
		}
		if strings.Contains(" "+attrs["class"]+" ", " row ") {
			rows = append(rows, attrs)
		}
	}
	return rows
}

type promAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       string            `json:"state"`
	ActiveAt    string            `json:"activeAt"`
	Value       string            `json:"value"`
}

// alertFor returns the alert named name for scope, if Prometheus has one.
func alertFor(t *testing.T, promURL, name, scope string) (promAlert, bool) {
	var res struct {
		Alerts []promAlert `json:"alerts"`
	}
	if err := promAPI(promURL+"/api/v1/alerts", &res); err != nil {
		t.Logf("prometheus alerts: %v", err)
		return promAlert{}, false
	}
	for _, a := range res.Alerts {
		if a.Labels["alertname"] == name && a.Labels["scope"] == scope {
			return a, true
		}
	}
	return promAlert{}, false
}

// usedMax queries enospc_limit_used and enospc_limit_max with the
// selector; each must return exactly the series of scope.
func usedMax(promURL, sel, scope string) (used, max float64, err error) {
	one := func(metric string) (float64, error) {
		var res struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		}
		if err := promAPI(promURL+"/api/v1/query?query="+url.QueryEscape(metric+sel), &res); err != nil {
			return 0, err
		}
		if len(res.Result) != 1 {
			return 0, fmt.Errorf("%s%s: %d series, want 1: %v", metric, sel, len(res.Result), res.Result)
		}
		r := res.Result[0]
		if r.Metric["scope"] != scope || r.Metric["job"] != jobName {
			return 0, fmt.Errorf("%s%s: series %v, want scope %q job %q", metric, sel, r.Metric, scope, jobName)
		}
		s, _ := r.Value[1].(string)
		return strconv.ParseFloat(s, 64)
	}
	if used, err = one("enospc_limit_used"); err != nil {
		return
	}
	max, err = one("enospc_limit_max")
	return
}

// promAPI GETs a Prometheus HTTP API address and decodes its data.
func promAPI(u string, data any) error {
	b, err := get(u)
	if err != nil {
		return err
	}
	var env struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
		Error  string          `json:"error"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		return fmt.Errorf("%s: %v: %s", u, err, tail(b, 300))
	}
	if env.Status != "success" {
		return fmt.Errorf("%s: %s %s", u, env.Status, env.Error)
	}
	return json.Unmarshal(env.Data, data)
}

var client = &http.Client{Timeout: 5 * time.Second}

func get(u string) ([]byte, error) {
	resp, err := client.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s: %s: %s", u, resp.Status, tail(b, 300))
	}
	return b, err
}

// waitFor polls cond every 250ms until it holds, or fails the test after
// timeout with what cond said last.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		ok, last := cond()
		if ok {
			t.Logf("%s: after %s", what, time.Since(start).Round(10*time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; last: %s", what, timeout, last)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
