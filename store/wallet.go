package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/bbolt"

	"github.com/valex-ai/valex"
)

// Wallets: each user's bought balance, their daily allowance spent so far
// and their plan, on disk; the holds of AI calls in flight, in memory (a
// stop ends every call, so a hold never needs to outlive the process).
// Reserve checks and holds under one mutex, so 100 concurrent calls against
// a balance for 10 hold exactly 10 times; the actual cost is charged in the
// same commit that records the call's usage (SaveExchangeCharged), so a
// call costs one commit, as before.

var bucketWallets = []byte("wallets") // be(userID) → wallet

type walletRecord struct {
	Balance    int64  `json:"b,omitempty"`
	Day        string `json:"d,omitempty"`
	Used       int64  `json:"u,omitempty"`
	Plan       string `json:"p,omitempty"`
	PlanEnds   int64  `json:"pe,omitempty"`
	PlanCharge string `json:"pc,omitempty"`
	Canceled   bool   `json:"px,omitempty"`
	Reminded   int64  `json:"pr,omitempty"` // the PlanEnds the renewal reminder was sent for
	Cap        int64  `json:"cap,omitempty"`
	Spent      int64  `json:"sp,omitempty"` // charged on Day, allowance and balance together
}

// holds are the reservations of calls in flight.
type holds struct {
	mu     sync.Mutex
	next   uint64
	byID   map[uint64]hold
	byUser map[int64]int64
}

type hold struct {
	user   int64
	amount int64
}

func getWallet(tx *bbolt.Tx, userID int64) (walletRecord, error) {
	var w walletRecord
	v := tx.Bucket(bucketWallets).Get(idKey(userID))
	if v == nil {
		return w, nil
	}
	err := json.Unmarshal(v, &w)
	return w, err
}

// putWallet writes a wallet; for a user without an account (erased while a
// call was in flight) it writes nothing: no write recreates a user.
func putWallet(tx *bbolt.Tx, userID int64, w walletRecord) error {
	if tx.Bucket(bucketUsers).Get(idKey(userID)) == nil {
		return nil
	}
	v, err := json.Marshal(w)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketWallets).Put(idKey(userID), v)
}

func (w walletRecord) wallet(userID int64, reserved int64) valex.Wallet {
	return valex.Wallet{UserID: userID, Balance: w.Balance, Reserved: reserved, Day: w.Day, Used: w.Used,
		Plan: w.Plan, PlanEnds: fromUnixNano(w.PlanEnds), PlanCharge: w.PlanCharge, Canceled: w.Canceled,
		Cap: w.Cap, Spent: w.Spent}
}

// Wallet returns a user's wallet (empty for a user who never bought), with
// what calls in flight hold.
func (db *DB) Wallet(userID int64) (valex.Wallet, error) {
	var w walletRecord
	err := db.view(func(tx *bbolt.Tx) error {
		var err error
		w, err = getWallet(tx, userID)
		return err
	})
	if err != nil {
		return valex.Wallet{}, fmt.Errorf("load wallet of user %d: %w", userID, err)
	}
	db.holds.mu.Lock()
	reserved := db.holds.byUser[userID]
	db.holds.mu.Unlock()
	return w.wallet(userID, reserved), nil
}

// Reserve holds amount for a call about to run, against the daily
// allowance left and the balance, minus what calls in flight already hold.
// It returns the hold's id, or valex.ErrNoCredits when the call would
// overdraw. End every hold with SaveExchangeCharged (or ChargeUsage) or
// Release.
func (db *DB) Reserve(userID, amount, allowance int64, now time.Time) (uint64, error) {
	h := &db.holds
	h.mu.Lock() // held across the read: the check and the hold are one step
	defer h.mu.Unlock()
	var w walletRecord
	err := db.view(func(tx *bbolt.Tx) error {
		if err := requireAccount(tx, userID); err != nil {
			return err
		}
		var err error
		w, err = getWallet(tx, userID)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("reserve credits of user %d: %w", userID, err)
	}
	wallet := w.wallet(userID, h.byUser[userID])
	if amount > wallet.Available(allowance, now) {
		wallet.Cap = 0
		if amount <= wallet.Available(allowance, now) {
			return 0, valex.ErrDailyCap // the money is there; the user's own limit is not
		}
		return 0, valex.ErrNoCredits
	}
	if h.byID == nil {
		h.byID, h.byUser = map[uint64]hold{}, map[int64]int64{}
	}
	h.next++
	h.byID[h.next] = hold{user: userID, amount: amount}
	h.byUser[userID] += amount
	return h.next, nil
}

// Release ends a hold. A failed call is released without a charge; a
// charged one is released after its charge committed.
func (db *DB) Release(reservation uint64) {
	h := &db.holds
	h.mu.Lock()
	defer h.mu.Unlock()
	r, ok := h.byID[reservation]
	if !ok {
		return
	}
	delete(h.byID, reservation)
	if h.byUser[r.user] -= r.amount; h.byUser[r.user] <= 0 {
		delete(h.byUser, r.user)
	}
}

// chargeTx takes cost from the user's wallet.
func chargeTx(tx *bbolt.Tx, userID, cost int64, c valex.Charge) error {
	if cost <= 0 {
		return nil
	}
	w, err := getWallet(tx, userID)
	if err != nil {
		return err
	}
	if day := c.Now.UTC().Format("2006-01-02"); w.Day != day {
		w.Day, w.Used, w.Spent = day, 0, 0
	}
	w.Spent += cost
	fromAllowance := min(cost, max(0, c.Allowance-w.Used))
	w.Used += fromAllowance
	w.Balance -= min(cost-fromAllowance, w.Balance)
	return putWallet(tx, userID, w)
}

// AddCredits adds bought or granted credits to a user's balance (negative
// to withdraw, never below zero).
func (db *DB) AddCredits(userID, amount int64) (valex.Wallet, error) {
	var w walletRecord
	err := db.update(func(tx *bbolt.Tx) error {
		var err error
		w, err = addCreditsTx(tx, userID, amount)
		return err
	})
	if err != nil {
		return valex.Wallet{}, fmt.Errorf("add credits to user %d: %w", userID, err)
	}
	return w.wallet(userID, 0), nil
}

func addCreditsTx(tx *bbolt.Tx, userID, amount int64) (walletRecord, error) {
	if err := requireAccount(tx, userID); err != nil {
		return walletRecord{}, err
	}
	w, err := getWallet(tx, userID)
	if err != nil {
		return w, err
	}
	w.Balance = max(0, w.Balance+amount)
	return w, putWallet(tx, userID, w)
}

// CancelRenewal marks a user's subscription as not renewing (the paid
// period still runs).
func (db *DB) CancelRenewal(userID int64) error {
	return db.update(func(tx *bbolt.Tx) error {
		w, err := getWallet(tx, userID)
		if err != nil {
			return err
		}
		w.Canceled = true
		return putWallet(tx, userID, w)
	})
}

// RenewalsDue calls fn for each subscription that ends within the window
// after now and has not been reminded for that end.
func (db *DB) RenewalsDue(now time.Time, window time.Duration, fn func(valex.Wallet) error) error {
	var due []valex.Wallet
	err := db.view(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketWallets).ForEach(func(k, v []byte) error {
			var w walletRecord
			if err := json.Unmarshal(v, &w); err != nil {
				return err
			}
			ends := fromUnixNano(w.PlanEnds)
			if w.Plan != "" && ends.After(now) && !ends.After(now.Add(window)) && w.Reminded != w.PlanEnds {
				due = append(due, w.wallet(int64(binary.BigEndian.Uint64(k)), 0))
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	for _, w := range due {
		if err := fn(w); err != nil {
			return err
		}
	}
	return nil
}

// ClaimRenewalReminder records that the reminder for the subscription
// ending at ends is being sent; false when it was already.
func (db *DB) ClaimRenewalReminder(userID int64, ends time.Time) (bool, error) {
	claimed := false
	err := db.update(func(tx *bbolt.Tx) error {
		w, err := getWallet(tx, userID)
		if err != nil {
			return err
		}
		if w.Reminded == unixNano(ends) || w.PlanEnds != unixNano(ends) {
			return nil
		}
		w.Reminded, claimed = unixNano(ends), true
		return putWallet(tx, userID, w)
	})
	return claimed, err
}

// SetDailyCap sets (0: removes) the daily spending cap a user set on
// themselves.
func (db *DB) SetDailyCap(userID, cap int64) error {
	return db.update(func(tx *bbolt.Tx) error {
		if err := requireAccount(tx, userID); err != nil {
			return err
		}
		w, err := getWallet(tx, userID)
		if err != nil {
			return err
		}
		w.Cap = max(0, cap)
		return putWallet(tx, userID, w)
	})
}

// GrantPlan puts a user on a plan until ends (an admin's grant), without a
// payment: it does not renew.
func (db *DB) GrantPlan(userID int64, plan string, ends time.Time) (valex.Wallet, error) {
	var w walletRecord
	err := db.update(func(tx *bbolt.Tx) error {
		if err := requireAccount(tx, userID); err != nil {
			return err
		}
		var err error
		if w, err = getWallet(tx, userID); err != nil {
			return err
		}
		w.Plan, w.PlanEnds, w.PlanCharge, w.Canceled = plan, unixNano(ends), "", true
		return putWallet(tx, userID, w)
	})
	if err != nil {
		return valex.Wallet{}, fmt.Errorf("grant plan to user %d: %w", userID, err)
	}
	return w.wallet(userID, 0), nil
}
