// Command demo runs the provider's main job end to end on a fresh machine:
// it starts a throwaway PostgreSQL, seeds the shop database, and runs
// `terraform apply` on main.tf through the locally built provider, then prints
// what the catalog found and what the load did. Then it writes on the source,
// shows the plan that announces the catch-up, applies it, shows both sides
// equal and the plan empty, and destroys everything. Run it with `make demo`.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/migrationworks/terraform-provider-migration/internal/engine/testenv"
)

func main() {
	rows := flag.Int("rows", 200000, "orders to seed in the source database")
	keep := flag.Bool("keep", false, "skip the destroy, keep the server running until Ctrl-C and the working directory in place, and print how to reach them")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	repo, err := os.Getwd()
	if err == nil {
		err = run(ctx, repo, *rows, *keep)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
}

func step(format string, args ...any) {
	fmt.Printf("\n==> "+format+"\n", args...)
}

// run runs the demo from the repository at repo.
func run(ctx context.Context, repo string, rows int, keep bool) error {
	if _, err := os.Stat(filepath.Join(repo, "examples", "demo", "main.tf")); err != nil {
		return errors.New("run the demo from the repository root: make demo")
	}
	work, err := os.MkdirTemp("", "migration-demo-")
	if err != nil {
		return err
	}
	if !keep {
		defer func() { _ = os.RemoveAll(work) }()
	}

	step("Building the provider")
	rc, err := testenv.BuildProvider(ctx, repo, filepath.Join(work, "bin"))
	if err != nil {
		return err
	}

	step("Starting a throwaway PostgreSQL (wal_level = logical)")
	pg, err := testenv.StartPostgres(ctx, testenv.PostgresOptions{})
	if err != nil {
		return err
	}
	if !keep {
		defer func() {
			if err := pg.Stop(); err != nil {
				fmt.Fprintln(os.Stderr, "stopping PostgreSQL:", err)
			}
		}()
	}
	fmt.Printf("    listening on %s:%d, data in %s\n", pg.Host, pg.Port, pg.DataDir)

	sourcePW, targetPW := secret(), secret()
	step("Seeding database shop with %d orders (owner: role migrator, with REPLICATION; password known only to this run)", rows)
	started := time.Now()
	if err := seed(ctx, pg, repo, rows, sourcePW, targetPW); err != nil {
		return err
	}
	fmt.Printf("    seeded in %s\n", time.Since(started).Round(time.Millisecond))

	tf := filepath.Join(work, "tf")
	archive := filepath.Join(work, "archive")
	for _, d := range []string{tf, archive} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	mainTF, err := os.ReadFile(filepath.Join(repo, "examples", "demo", "main.tf"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tf, "main.tf"), mainTF, 0o600); err != nil {
		return err
	}
	env := []string{
		"TF_CLI_CONFIG_FILE=" + rc, "TF_IN_AUTOMATION=1",
		"TF_VAR_pg_port=" + strconv.Itoa(pg.Port), "TF_VAR_archive_dir=" + archive,
		"TF_VAR_source_password=" + sourcePW, "TF_VAR_target_password=" + targetPW,
	}

	step("terraform apply: checks the endpoints, reads the catalog, creates the replication slot, loads shop into shop_next")
	if _, err := terraform(ctx, tf, env, true, "apply", "-auto-approve"); err != nil {
		return err
	}

	step("What the catalog found")
	out, err := terraform(ctx, tf, env, false, "output", "-json")
	if err != nil {
		return err
	}
	if err := printCatalog(out); err != nil {
		return err
	}

	step("What the migration did")
	if err := printMigration(out); err != nil {
		return err
	}

	step("Writing on the source: the shop keeps taking orders")
	w, err := writeOnSource(ctx, pg)
	if err != nil {
		return err
	}

	step("terraform plan -detailed-exitcode: the plan announces the catch-up")
	if err := planCatchUp(ctx, tf, env, pg, w); err != nil {
		return err
	}

	step("terraform apply: replays the changes from the replication slot")
	if err := applyCatchUp(ctx, tf, env, w); err != nil {
		return err
	}

	step("Source and target, table by table")
	if err := compareSides(ctx, pg); err != nil {
		return err
	}

	step("terraform plan -detailed-exitcode: nothing left to do")
	if err := slotIdle(ctx, pg); err != nil {
		return err
	}
	if _, err := terraform(ctx, tf, env, true, "plan", "-detailed-exitcode"); err != nil {
		return fmt.Errorf("the plan after the catch-up should be empty: %w", err)
	}

	if keep {
		return keepRunning(ctx, work, tf, env, pg)
	}
	step("terraform destroy: drops the replication slot and the publication on the source")
	if err := destroy(ctx, tf, env, pg); err != nil {
		return err
	}
	fmt.Println("\nDemo finished.")
	return nil
}

// keepRunning writes the environment terraform needs in work/env.sh and keeps
// the server (a child of this process) running until Ctrl-C.
func keepRunning(ctx context.Context, work, tf string, env []string, pg *testenv.Postgres) error {
	var sh strings.Builder
	for _, e := range env {
		k, v, _ := strings.Cut(e, "=")
		fmt.Fprintf(&sh, "export %s='%s'\n", k, v)
	}
	envFile := filepath.Join(work, "env.sh")
	if err := os.WriteFile(envFile, []byte(sh.String()), 0o600); err != nil {
		return err
	}
	fmt.Printf("\nDemo finished; no destroy (-keep).\nKept: PostgreSQL on 127.0.0.1:%d (superuser postgres, no password), terraform working directory %s.\n"+
		"In another shell: cd %s && . %s && terraform plan\n"+
		"Press Ctrl-C to stop the server; the working directory stays.\n", pg.Port, tf, tf, envFile)
	<-ctx.Done()
	return pg.Stop()
}

func secret() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func seed(ctx context.Context, pg *testenv.Postgres, repo string, rows int, sourcePW, targetPW string) error {
	// The benchmark's shop dataset, and what the demo adds to it.
	var sql []byte
	for _, f := range []string{filepath.Join("examples", "bench", "dataset.sql"), filepath.Join("examples", "demo", "extras.sql")} {
		b, err := os.ReadFile(filepath.Join(repo, f))
		if err != nil {
			return err
		}
		sql = append(append(sql, b...), '\n')
	}
	if err := pg.CreateRole(ctx, "migrator", sourcePW, "REPLICATION"); err != nil {
		return err
	}
	if err := pg.CreateRole(ctx, "loader", targetPW); err != nil {
		return err
	}
	for _, db := range []string{"shop", "shop_next"} {
		if err := pg.CreateDatabase(ctx, db); err != nil {
			return err
		}
	}
	// Change data capture publishes the tables, which takes their owner (or a
	// superuser): migrator owns the database and creates the dataset.
	sql = append([]byte(`ALTER DATABASE shop OWNER TO migrator; SET ROLE migrator;`+"\n"), sql...)
	if err := pg.Exec(ctx, "shop", strings.ReplaceAll(string(sql), "{{ROWS}}", strconv.Itoa(rows))); err != nil {
		return fmt.Errorf("seeding: %w", err)
	}
	return pg.Exec(ctx, "shop_next", `ALTER DATABASE shop_next OWNER TO loader; ALTER SCHEMA public OWNER TO loader`)
}

// terraform runs the CLI in dir; when show is set its output goes to the terminal.
func terraform(ctx context.Context, dir string, env []string, show bool, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "terraform", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	if show {
		cmd.Stdout = os.Stdout
		return nil, cmd.Run()
	}
	return cmd.Output()
}

func printCatalog(raw []byte) error {
	var out struct {
		Source struct {
			Value struct {
				ID             string   `json:"id"`
				ServerVersion  string   `json:"server_version"`
				CDCReady       bool     `json:"cdc_ready"`
				Tables         int      `json:"tables"`
				EstimatedRows  int64    `json:"estimated_rows"`
				TotalBytes     int64    `json:"total_bytes"`
				NeedsKeyForCDC []string `json:"needs_key_for_cdc"`
			} `json:"value"`
		} `json:"source"`
		Tables struct {
			Value []struct {
				Name       string   `json:"name"`
				Kind       string   `json:"kind"`
				Rows       int64    `json:"rows"`
				Bytes      int64    `json:"bytes"`
				PrimaryKey string   `json:"primary_key"`
				ReplicaID  string   `json:"replica_id"`
				Columns    int      `json:"columns"`
				References []string `json:"references"`
			} `json:"value"`
		} `json:"tables"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return fmt.Errorf("reading terraform output: %w", err)
	}
	s := out.Source.Value
	fmt.Printf("    source     %s\n    server     PostgreSQL %s, ready for CDC: %v\n    tables     %d, about %d rows, %s\n\n",
		s.ID, s.ServerVersion, s.CDCReady, s.Tables, s.EstimatedRows, mib(s.TotalBytes))
	w := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	_, _ = fmt.Fprintln(w, "    TABLE\tKIND\tROWS (est.)\tSIZE\tPRIMARY KEY\tCOLUMNS\tREFERENCES")
	for _, t := range out.Tables.Value {
		key := t.PrimaryKey
		switch {
		case key == "" && t.ReplicaID == "full":
			key = "(none; replica identity full)"
		case key == "":
			key = "(none)"
		}
		_, _ = fmt.Fprintf(w, "    %s\t%s\t%d\t%s\t%s\t%d\t%s\n", t.Name, t.Kind, t.Rows, mib(t.Bytes), key, t.Columns, strings.Join(t.References, ", "))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if len(s.NeedsKeyForCDC) > 0 {
		fmt.Printf("\n    Copies fine, but needs REPLICA IDENTITY FULL or a key before CDC: %s\n", strings.Join(s.NeedsKeyForCDC, ", "))
	}
	return nil
}

func printMigration(raw []byte) error {
	var out struct {
		Migration struct {
			Value struct {
				Phase      string `json:"phase"`
				RowsCopied int64  `json:"rows_copied"`
				StartedAt  string `json:"started_at"`
				FinishedAt string `json:"finished_at"`
				SlotHealth string `json:"slot_health"`
				Confirmed  string `json:"confirmed"`
				Tables     []struct {
					Target  string  `json:"target"`
					Rows    int64   `json:"rows"`
					Seconds float64 `json:"seconds"`
				} `json:"tables"`
			} `json:"value"`
		} `json:"migration"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return fmt.Errorf("reading terraform output: %w", err)
	}
	m := out.Migration.Value
	if m.Phase != "done" {
		return fmt.Errorf("the migration task is %q, want done", m.Phase)
	}
	elapsed := ""
	if a, errA := time.Parse(time.RFC3339, m.StartedAt); errA == nil {
		if b, errB := time.Parse(time.RFC3339, m.FinishedAt); errB == nil {
			elapsed = ", in " + b.Sub(a).String()
		}
	}
	fmt.Printf("    task shop: %s, %d rows copied%s\n", m.Phase, m.RowsCopied, elapsed)
	fmt.Printf("    replication slot migration_shop: %s, target confirmed up to LSN %s\n\n", m.SlotHealth, m.Confirmed)
	w := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	_, _ = fmt.Fprintln(w, "    TARGET TABLE\tROWS\tTIME\tROWS/S")
	for _, t := range m.Tables {
		rate := "-"
		if t.Seconds > 0 {
			rate = fmt.Sprintf("%.0f", float64(t.Rows)/t.Seconds)
		}
		_, _ = fmt.Fprintf(w, "    %s\t%d\t%.2fs\t%s\n", t.Target, t.Rows, t.Seconds, rate)
	}
	return w.Flush()
}

func mib(b int64) string {
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}
