package store

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/valex-ai/valex"
)

// Payment records (valex.Payment), keyed by Telegram's charge id so the
// same successful_payment delivered twice is recorded and credited once.
var (
	bucketPayments       = []byte("payments")         // charge id → payment
	bucketPaymentsByUser = []byte("payments_by_user") // be(userID)‖charge id → empty
)

type paymentRecord struct {
	Provider string `json:"pc,omitempty"`
	User     int64  `json:"u"`
	Method   string `json:"m"`
	Product  string `json:"p"`
	Credits  int64  `json:"c,omitempty"`
	Amount   int    `json:"a"`
	Currency string `json:"cu"`
	Status   string `json:"s"`
	At       int64  `json:"t"`
}

func (r paymentRecord) payment(charge string) valex.Payment {
	return valex.Payment{ChargeID: charge, ProviderChargeID: r.Provider, UserID: r.User, Method: r.Method, Product: r.Product,
		Credits: r.Credits, Amount: r.Amount, Currency: r.Currency, Status: r.Status, At: fromUnixNano(r.At)}
}

// RecordPayment records a successful payment and adds its credits to the
// payer's balance, in one commit. It reports false, changing nothing, when
// the charge id is recorded already.
func (db *DB) RecordPayment(p valex.Payment) (recorded bool, w valex.Wallet, err error) {
	if p.ChargeID == "" || p.UserID == 0 {
		return false, w, fmt.Errorf("record payment: charge id and user are required")
	}
	err = db.update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketPayments)
		if b.Get([]byte(p.ChargeID)) != nil {
			return nil
		}
		if err := requireAccount(tx, p.UserID); err != nil {
			return err
		}
		v, err := json.Marshal(paymentRecord{Provider: p.ProviderChargeID, User: p.UserID, Method: p.Method, Product: p.Product,
			Credits: p.Credits, Amount: p.Amount, Currency: p.Currency, Status: p.Status, At: unixNano(p.At)})
		if err != nil {
			return err
		}
		if err := b.Put([]byte(p.ChargeID), v); err != nil {
			return err
		}
		if err := tx.Bucket(bucketPaymentsByUser).Put(append(idKey(p.UserID), p.ChargeID...), nil); err != nil {
			return err
		}
		wr, err := addCreditsTx(tx, p.UserID, p.Credits)
		if err != nil {
			return err
		}
		if p.Plan != "" {
			// A subscription payment: the plan runs to the later end.
			if e := unixNano(p.PlanEnds); wr.Plan != p.Plan || e > wr.PlanEnds {
				wr.PlanEnds = e
			}
			wr.Plan, wr.PlanCharge, wr.Canceled = p.Plan, p.ChargeID, false
			if err := putWallet(tx, p.UserID, wr); err != nil {
				return err
			}
		}
		recorded, w = true, wr.wallet(p.UserID, 0)
		return nil
	})
	if err != nil {
		return false, valex.Wallet{}, fmt.Errorf("record payment %s: %w", p.ChargeID, err)
	}
	return recorded, w, nil
}

// Payments lists a user's payments, oldest charge id first.
func (db *DB) Payments(userID int64) ([]valex.Payment, error) {
	var out []valex.Payment
	err := db.view(func(tx *bbolt.Tx) error {
		prefix := idKey(userID)
		c := tx.Bucket(bucketPaymentsByUser).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			charge := k[len(prefix):]
			v := tx.Bucket(bucketPayments).Get(charge)
			if v == nil {
				continue
			}
			var r paymentRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			out = append(out, r.payment(string(charge)))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list payments of user %d: %w", userID, err)
	}
	return out, nil
}

// Payment loads one payment by charge id.
func (db *DB) Payment(charge string) (valex.Payment, error) {
	var p valex.Payment
	err := db.view(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketPayments).Get([]byte(charge))
		if v == nil {
			return valex.ErrNotFound
		}
		var r paymentRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return err
		}
		p = r.payment(charge)
		return nil
	})
	return p, err
}

// anonymizePaymentsTx keeps an erased user's payment records (the law
// wants them) under a random stand-in for the user: the records no longer
// say who paid. It returns how many it kept.
func anonymizePaymentsTx(tx *bbolt.Tx, userID int64) (int, error) {
	prefix := idKey(userID)
	idx := tx.Bucket(bucketPaymentsByUser)
	var keys [][]byte
	c := idx.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, append([]byte(nil), k...))
	}
	if len(keys) == 0 {
		return 0, nil
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return 0, err
	}
	standIn := -int64(binary.BigEndian.Uint64(b[:])>>1) - 1 // negative: never a Telegram user id
	for _, k := range keys {
		charge := k[len(prefix):]
		v := tx.Bucket(bucketPayments).Get(charge)
		if v != nil {
			var r paymentRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return 0, err
			}
			r.User = standIn
			nv, err := json.Marshal(r)
			if err != nil {
				return 0, err
			}
			if err := tx.Bucket(bucketPayments).Put(charge, nv); err != nil {
				return 0, err
			}
		}
		if err := idx.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(keys), nil
}

// CategoryPayments names payment records in the export.
const CategoryPayments = "payments"

type exportPayment struct {
	ChargeID string    `json:"telegram_charge_id"`
	Method   string    `json:"method"`
	Product  string    `json:"product"`
	Credits  float64   `json:"credits"`
	Amount   int       `json:"amount"`
	Currency string    `json:"currency"`
	Status   string    `json:"status"`
	At       time.Time `json:"at"`
}

type exportWallet struct {
	Credits  float64    `json:"bought_credits_left"`
	Plan     string     `json:"plan,omitempty"`
	PlanEnds *time.Time `json:"plan_ends,omitempty"`
}

// ExportPayments is the payments section of the access export: the
// user's payment records (no card data is ever stored) and their wallet.
func (db *DB) ExportPayments(userID int64) (data map[string]any, counts map[string]int, err error) {
	ps, err := db.Payments(userID)
	if err != nil {
		return nil, nil, err
	}
	w, err := db.Wallet(userID)
	if err != nil {
		return nil, nil, err
	}
	list := make([]exportPayment, 0, len(ps))
	for _, p := range ps {
		list = append(list, exportPayment{ChargeID: p.ChargeID, Method: p.Method, Product: p.Product,
			Credits: float64(p.Credits) / 1e6, Amount: p.Amount, Currency: p.Currency, Status: p.Status, At: p.At.UTC()})
	}
	wallet := exportWallet{Credits: float64(w.Balance) / 1e6, Plan: w.Plan}
	if !w.PlanEnds.IsZero() {
		ends := w.PlanEnds.UTC()
		wallet.PlanEnds = &ends
	}
	data = map[string]any{CategoryPayments: list, "wallet": wallet}
	counts = map[string]int{}
	if len(list) > 0 {
		counts[CategoryPayments] = len(list)
	}
	return data, counts, nil
}

// MarkRefunded records a payment's refund and withdraws its credits from
// the payer's balance (never below zero), in one commit. It reports false
// when the payment was refunded already.
func (db *DB) MarkRefunded(charge string) (valex.Payment, bool, error) {
	var p valex.Payment
	changed := false
	err := db.update(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketPayments).Get([]byte(charge))
		if v == nil {
			return valex.ErrNotFound
		}
		var r paymentRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return err
		}
		p = r.payment(charge)
		if r.Status == valex.PaymentRefunded {
			return nil
		}
		r.Status, p.Status, changed = valex.PaymentRefunded, valex.PaymentRefunded, true
		nv, err := json.Marshal(r)
		if err != nil {
			return err
		}
		if err := tx.Bucket(bucketPayments).Put([]byte(charge), nv); err != nil {
			return err
		}
		if r.User > 0 && tx.Bucket(bucketUsers).Get(idKey(r.User)) != nil {
			if _, err := addCreditsTx(tx, r.User, -r.Credits); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return valex.Payment{}, false, fmt.Errorf("mark payment %s refunded: %w", charge, err)
	}
	return p, changed, nil
}

// EachPayment calls fn for every payment record (erased payers appear as
// their stand-in), in charge id order.
func (db *DB) EachPayment(fn func(valex.Payment) error) error {
	return db.view(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketPayments).ForEach(func(k, v []byte) error {
			var r paymentRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			return fn(r.payment(string(k)))
		})
	})
}

// PurgePayments deletes the payment records the retention rule lets go
// (deletable reports it per payment date) and returns how many.
func (db *DB) PurgePayments(deletable func(paidAt time.Time) bool) (int, error) {
	n := 0
	err := db.update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketPayments)
		var gone []valex.Payment
		if err := b.ForEach(func(k, v []byte) error {
			var r paymentRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			if deletable(fromUnixNano(r.At)) {
				gone = append(gone, r.payment(string(k)))
			}
			return nil
		}); err != nil {
			return err
		}
		for _, p := range gone {
			if err := b.Delete([]byte(p.ChargeID)); err != nil {
				return err
			}
			if p.UserID > 0 {
				if err := tx.Bucket(bucketPaymentsByUser).Delete(append(idKey(p.UserID), p.ChargeID...)); err != nil {
					return err
				}
			}
		}
		n = len(gone)
		return nil
	})
	return n, err
}
