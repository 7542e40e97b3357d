package main

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/rs/zerolog"

	"github.com/valex-ai/valex"
)

const paymentsUsage = "usage: valex payments export --from 2026-01-01 --to 2026-03-31   (dates in UTC, both included; bot stopped)"

// paymentsCommand runs `valex payments export`: the payment records of a
// period as CSV for the accountant. No card data exists to export; an
// erased payer appears as their random stand-in.
func paymentsCommand(args []string, stdout io.Writer, getenv func(string) string) error {
	if len(args) != 5 || args[0] != "export" || args[1] != "--from" || args[3] != "--to" {
		return errors.New(paymentsUsage)
	}
	from, err1 := time.Parse("2006-01-02", args[2])
	to, err2 := time.Parse("2006-01-02", args[4])
	if err1 != nil || err2 != nil || to.Before(from) {
		return errors.New(paymentsUsage)
	}
	to = to.AddDate(0, 0, 1) // the whole last day
	cfg, err := LoadConfig(getenv)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, dbFile)); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("no database in %s", cfg.DataDir)
	}
	keys, db, err := openStores(cfg, zerolog.Nop(), time.Now)
	if err != nil {
		return fmt.Errorf("payments export needs the bot stopped (its files are locked while it runs): %w", err)
	}
	defer func() {
		db.Close()
		keys.Close()
	}()
	w := csv.NewWriter(stdout)
	if err := w.Write([]string{"date_utc", "telegram_charge_id", "provider_charge_id", "payer", "method", "product", "amount", "currency", "credits", "status"}); err != nil {
		return err
	}
	err = db.EachPayment(func(p valex.Payment) error {
		if p.At.Before(from) || !p.At.Before(to) {
			return nil
		}
		return w.Write([]string{p.At.UTC().Format(time.RFC3339), p.ChargeID, p.ProviderChargeID, strconv.FormatInt(p.UserID, 10),
			p.Method, p.Product, strconv.Itoa(p.Amount), p.Currency, strconv.FormatFloat(float64(p.Credits)/1e6, 'f', -1, 64), p.Status})
	})
	if err != nil {
		return err
	}
	w.Flush()
	return w.Error()
}
