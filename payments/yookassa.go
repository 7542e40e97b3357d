// Package payments runs the payment workflows that handlers, jobs and the
// HTTP listener share: YooKassa payments from creation to the credits
// (Telegram Stars payments arrive as updates: handlers.Payments).
package payments

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/rs/zerolog"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/store"
	"github.com/valex-ai/valex/yookassa"
)

// Store is the part of the store YooKassa payments need.
type Store interface {
	AddPending(p store.PendingPayment) error
	PendingPayments(due time.Time) ([]store.PendingPayment, error)
	Pending(id string) (store.PendingPayment, bool, error)
	ReschedulePending(id string, next time.Time, attempts int) error
	DropPending(id string) error
	RecordPayment(p valex.Payment) (bool, valex.Wallet, error)
}

// Notify tells a user what became of their payment: paid (with their
// wallet after it) or canceled.
type Notify func(ctx context.Context, userID int64, p valex.Payment, w valex.Wallet)

// YooKassa runs payments through YooKassa's API: no card data ever reaches
// Valex. The outcome is read from the API only: by the poll job, and when
// a notification names a payment (the notification itself is not trusted).
type YooKassa struct {
	API       *yookassa.Client
	Store     Store
	Plans     valex.Plans
	Notify    Notify
	Clock     valex.Clock
	Log       zerolog.Logger
	ReturnURL string // where YooKassa sends the user back (the bot's t.me link)
	// Receipts sends the 54-FZ receipt to the customer's email or phone.
	Receipts bool
}

// ErrNeedContact is returned when receipts are on and the user has neither
// an email nor a phone in their profile.
var ErrNeedContact = valex.Errorf("pay.yk_need_contact", nil)

// Start creates a payment for a pack and returns YooKassa's payment page.
// key makes it idempotent (the update that asked for it): a replayed
// update gets the same payment, never a second one.
func (y *YooKassa) Start(ctx context.Context, u valex.User, packID, key string) (string, error) {
	k, ok := y.Plans.Pack(packID)
	if !ok || k.Kopecks <= 0 {
		return "", valex.Errorf("pay.gone", nil)
	}
	req := yookassa.PaymentRequest{
		Amount: yookassa.RUB(k.Kopecks), Capture: true,
		Confirmation: yookassa.Confirmation{Type: "redirect", ReturnURL: y.ReturnURL},
		Description:  fmt.Sprintf("Valex: %s", k.ID),
		Metadata:     map[string]string{"pack": k.ID},
	}
	if y.Receipts {
		c := yookassa.Customer{Email: u.Email, Phone: u.Phone}
		if c.Email == "" && c.Phone == "" {
			return "", ErrNeedContact
		}
		req.Receipt = &yookassa.Receipt{Customer: c, Items: []yookassa.ReceiptItem{{
			Description: req.Description, Quantity: "1.00", Amount: req.Amount,
			VATCode: 1, PaymentMode: "full_payment", PaymentSubject: "service",
		}}}
	}
	p, err := y.API.CreatePayment(ctx, key, req)
	if err != nil {
		return "", err
	}
	now := y.Clock.Now()
	if err := y.Store.AddPending(store.PendingPayment{ID: p.ID, UserID: u.ID, Product: k.ID, Kopecks: k.Kopecks,
		Created: now, Next: now.Add(time.Minute)}); err != nil {
		return "", err
	}
	if p.Confirmation == nil || p.Confirmation.ConfirmationURL == "" {
		return "", errors.New("yookassa: the payment has no confirmation URL")
	}
	return p.Confirmation.ConfirmationURL, nil
}

// Check reads a waiting payment from the API and settles it: succeeded →
// recorded and credited (once, by its id) and the user told; canceled →
// forgotten and the user told; still pending → checked again later, less
// often each time.
func (y *YooKassa) Check(ctx context.Context, id string) error {
	pend, ok, err := y.Store.Pending(id)
	if err != nil || !ok {
		return err // not ours, or settled already
	}
	p, err := y.API.GetPayment(ctx, id)
	if err != nil {
		return y.retryLater(pend, err)
	}
	switch p.Status {
	case yookassa.StatusSucceeded:
		k, _ := y.Plans.Pack(pend.Product)
		credits := k.Credits
		pay := valex.Payment{
			ChargeID: "yookassa:" + p.ID, ProviderChargeID: p.ID, UserID: pend.UserID, Method: valex.PaymentYooKassa,
			Product: pend.Product, Credits: credits, Amount: int(pend.Kopecks), Currency: "RUB", Status: valex.PaymentPaid,
			At: y.Clock.Now(),
		}
		recorded, w, err := y.Store.RecordPayment(pay)
		if errors.Is(err, valex.ErrNotFound) {
			y.Log.Error().Str("payment", p.ID).Msg("a YooKassa payment succeeded for an erased account: refund it from YooKassa")
			return y.Store.DropPending(id)
		}
		if err != nil {
			return err
		}
		if err := y.Store.DropPending(id); err != nil {
			return err
		}
		if recorded {
			y.Notify(ctx, pend.UserID, pay, w)
		}
		return nil
	case yookassa.StatusCanceled:
		if err := y.Store.DropPending(id); err != nil {
			return err
		}
		y.Notify(ctx, pend.UserID, valex.Payment{ChargeID: "yookassa:" + p.ID, ProviderChargeID: p.ID, Product: pend.Product,
			Status: yookassa.StatusCanceled}, valex.Wallet{})
		return nil
	}
	return y.retryLater(pend, nil)
}

// retryLater schedules the next check: 1, 2, 4 … minutes, at most an hour.
func (y *YooKassa) retryLater(p store.PendingPayment, cause error) error {
	wait := time.Minute << min(p.Attempts, 6)
	if err := y.Store.ReschedulePending(p.ID, y.Clock.Now().Add(wait), p.Attempts+1); err != nil {
		return err
	}
	return cause
}

// PollJob checks the payments whose next check has come.
func (y *YooKassa) PollJob(ctx context.Context) (string, error) {
	due, err := y.Store.PendingPayments(y.Clock.Now())
	if err != nil {
		return "", err
	}
	var failed []error
	for _, p := range due {
		if err := y.Check(ctx, p.ID); err != nil {
			failed = append(failed, err)
		}
	}
	return "checked " + strconv.Itoa(len(due)) + " YooKassa payments", errors.Join(failed...)
}

// NotificationHandler receives YooKassa's HTTP notifications. Only the
// payment id is taken from them; the payment is read back from the API
// before anything is credited, so a forged notification credits nothing.
func (y *YooKassa) NotificationHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		var n yookassa.Notification
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&n); err != nil || n.Object.ID == "" {
			http.Error(w, "not a notification", http.StatusBadRequest)
			return
		}
		if err := y.Check(r.Context(), n.Object.ID); err != nil {
			y.Log.Warn().Err(err).Str("payment", n.Object.ID).Msg("yookassa notification: check failed, the poll job retries")
		}
		w.WriteHeader(http.StatusOK) // YooKassa retries anything else; the poll job covers a failed check
	})
}

// Refund refunds a succeeded YooKassa payment in full through the refunds
// API (idempotent: a retried refund is the same refund).
func (y *YooKassa) Refund(ctx context.Context, pay valex.Payment) error {
	_, err := y.API.CreateRefund(ctx, "refund-"+pay.ChargeID, pay.ProviderChargeID, yookassa.RUB(int64(pay.Amount)))
	return err
}
