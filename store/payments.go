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
	Update   int64  `json:"up,omitempty"` // the Telegram update that recorded it
}

func (r paymentRecord) payment(charge string) valex.Payment {
	return valex.Payment{ChargeID: charge, ProviderChargeID: r.Provider, UserID: r.User, Method: r.Method, Product: r.Product,
		Credits: r.Credits, Amount: r.Amount, Currency: r.Currency, Status: r.Status, At: fromUnixNano(r.At)}
}

// RecordPayment records a successful payment and adds its credits to the
// payer's balance, in one commit. It reports false, changing nothing, when
// the charge id is recorded already — except to a replay of the update that
// recorded it (p.SourceUpdate, after a crash cut its confirmation off): that
// gets true and the wallet as it is, changing nothing, so the confirmation
// is sent.
func (db *DB) RecordPayment(p valex.Payment) (recorded bool, w valex.Wallet, err error) {
	if p.ChargeID == "" || p.UserID == 0 {
		return false, w, fmt.Errorf("record payment: charge id and user are required")
	}
	err = db.update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketPayments)
		if v := b.Get([]byte(p.ChargeID)); v != nil {
			var old paymentRecord
			if err := json.Unmarshal(v, &old); err != nil {
				return err
			}
			if p.SourceUpdate == 0 || old.Update != p.SourceUpdate {
				return nil // another update with the same charge: confirmed the first time
			}
			wr, err := getWallet(tx, p.UserID)
			if err != nil {
				return err
			}
			recorded, w = true, wr.wallet(p.UserID, 0)
			return nil
		}
		if err := requireAccount(tx, p.UserID); err != nil {
			return err
		}
		v, err := json.Marshal(paymentRecord{Provider: p.ProviderChargeID, User: p.UserID, Method: p.Method, Product: p.Product,
			Credits: p.Credits, Amount: p.Amount, Currency: p.Currency, Status: p.Status, At: unixNano(p.At), Update: p.SourceUpdate})
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

// YooKassa payments waiting for their outcome: created, the user sent to
// YooKassa's page, the result not read back yet.
var bucketYooKassaPending = []byte("yookassa_pending") // payment id → pendingRecord

type pendingRecord struct {
	User     int64  `json:"u"`
	Product  string `json:"p"`
	Kopecks  int64  `json:"k"`
	Created  int64  `json:"c"`
	Next     int64  `json:"n"` // next check
	Attempts int    `json:"a"`
}

// PendingPayment is a YooKassa payment Valex is waiting on.
type PendingPayment struct {
	ID       string
	UserID   int64
	Product  string
	Kopecks  int64
	Created  time.Time
	Next     time.Time
	Attempts int
}

// AddPending remembers a created YooKassa payment (again: no change).
func (db *DB) AddPending(p PendingPayment) error {
	return db.update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketYooKassaPending)
		if b.Get([]byte(p.ID)) != nil {
			return nil
		}
		if err := requireAccount(tx, p.UserID); err != nil {
			return err
		}
		v, err := json.Marshal(pendingRecord{User: p.UserID, Product: p.Product, Kopecks: p.Kopecks,
			Created: unixNano(p.Created), Next: unixNano(p.Next)})
		if err != nil {
			return err
		}
		return b.Put([]byte(p.ID), v)
	})
}

// PendingPayments lists the waiting payments (due: only those whose next
// check is not after due; zero: all).
func (db *DB) PendingPayments(due time.Time) ([]PendingPayment, error) {
	var out []PendingPayment
	err := db.view(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketYooKassaPending).ForEach(func(k, v []byte) error {
			var r pendingRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			p := PendingPayment{ID: string(k), UserID: r.User, Product: r.Product, Kopecks: r.Kopecks,
				Created: fromUnixNano(r.Created), Next: fromUnixNano(r.Next), Attempts: r.Attempts}
			if due.IsZero() || !p.Next.After(due) {
				out = append(out, p)
			}
			return nil
		})
	})
	return out, err
}

// Pending loads one waiting payment.
func (db *DB) Pending(id string) (PendingPayment, bool, error) {
	ps, err := db.PendingPayments(time.Time{})
	for _, p := range ps {
		if p.ID == id {
			return p, true, err
		}
	}
	return PendingPayment{}, false, err
}

// ReschedulePending sets when a waiting payment is checked next.
func (db *DB) ReschedulePending(id string, next time.Time, attempts int) error {
	return db.update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketYooKassaPending)
		v := b.Get([]byte(id))
		if v == nil {
			return nil
		}
		var r pendingRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return err
		}
		r.Next, r.Attempts = unixNano(next), attempts
		nv, err := json.Marshal(r)
		if err != nil {
			return err
		}
		return b.Put([]byte(id), nv)
	})
}

// DropPending forgets a waiting payment (settled, canceled).
func (db *DB) DropPending(id string) error {
	return db.update(func(tx *bbolt.Tx) error { return tx.Bucket(bucketYooKassaPending).Delete([]byte(id)) })
}

// dropUserPendingTx forgets an erased user's waiting payments: one that
// succeeds later finds no account to credit and is refunded by staff from
// the processor's side (its id is in the log).
func dropUserPendingTx(tx *bbolt.Tx, userID int64) error {
	b := tx.Bucket(bucketYooKassaPending)
	var mine [][]byte
	err := b.ForEach(func(k, v []byte) error {
		var r pendingRecord
		if json.Unmarshal(v, &r) == nil && r.User == userID {
			mine = append(mine, append([]byte(nil), k...))
		}
		return nil
	})
	for _, k := range mine {
		if err == nil {
			err = b.Delete(k)
		}
	}
	return err
}
