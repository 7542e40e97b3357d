// Package yookassa is a client of YooKassa's payment API (v3), the
// operator's payment processor named in the privacy policy. Card data
// never touches Valex: a payment is created here, the user pays on
// YooKassa's page (a "redirect" confirmation), and the outcome is read back
// from the API — by polling, and on YooKassa's notifications, each re-read
// from the API before anything is credited.
package yookassa

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// DefaultBaseURL is YooKassa's API.
const DefaultBaseURL = "https://api.yookassa.ru/v3"

// Payment statuses.
const (
	StatusPending           = "pending"
	StatusWaitingForCapture = "waiting_for_capture"
	StatusSucceeded         = "succeeded"
	StatusCanceled          = "canceled"
)

// Amount is money as YooKassa writes it: a decimal string and a currency.
type Amount struct {
	Value    string `json:"value"`
	Currency string `json:"currency"`
}

// RUB formats kopecks as a YooKassa amount in rubles.
func RUB(kopecks int64) Amount {
	return Amount{Value: fmt.Sprintf("%d.%02d", kopecks/100, kopecks%100), Currency: "RUB"}
}

// Confirmation is how the user confirms the payment.
type Confirmation struct {
	Type            string `json:"type"`                       // "redirect"
	ReturnURL       string `json:"return_url,omitempty"`       // where YooKassa sends the user back
	ConfirmationURL string `json:"confirmation_url,omitempty"` // the payment page (in the answer)
}

// Receipt is the 54-FZ receipt YooKassa sends the customer.
type Receipt struct {
	Customer Customer      `json:"customer"`
	Items    []ReceiptItem `json:"items"`
}

// Customer is who gets the receipt: an email or a phone.
type Customer struct {
	Email string `json:"email,omitempty"`
	Phone string `json:"phone,omitempty"`
}

// ReceiptItem is one line of a receipt.
type ReceiptItem struct {
	Description    string `json:"description"`
	Quantity       string `json:"quantity"`
	Amount         Amount `json:"amount"`
	VATCode        int    `json:"vat_code"`
	PaymentMode    string `json:"payment_mode"`
	PaymentSubject string `json:"payment_subject"`
}

// PaymentRequest creates a payment.
type PaymentRequest struct {
	Amount       Amount            `json:"amount"`
	Capture      bool              `json:"capture"`
	Confirmation Confirmation      `json:"confirmation"`
	Description  string            `json:"description,omitempty"`
	Metadata     map[string]string `json:"metadata,omitempty"`
	Receipt      *Receipt          `json:"receipt,omitempty"`
}

// Payment is YooKassa's payment object (the fields Valex reads).
type Payment struct {
	ID           string            `json:"id"`
	Status       string            `json:"status"`
	Paid         bool              `json:"paid"`
	Amount       Amount            `json:"amount"`
	Confirmation *Confirmation     `json:"confirmation,omitempty"`
	CreatedAt    time.Time         `json:"created_at"`
	Description  string            `json:"description,omitempty"`
	Metadata     map[string]string `json:"metadata,omitempty"`
}

// Refund is YooKassa's refund object.
type Refund struct {
	ID        string `json:"id"`
	PaymentID string `json:"payment_id"`
	Status    string `json:"status"`
	Amount    Amount `json:"amount"`
}

// Notification is what YooKassa posts to the operator's HTTP listener. It
// is never trusted: only its object id is read, then the payment is read
// back from the API.
type Notification struct {
	Type   string `json:"type"`
	Event  string `json:"event"`
	Object struct {
		ID string `json:"id"`
	} `json:"object"`
}

// Error is an error answer of the API.
type Error struct {
	Status      int
	Code        string `json:"code"`
	Description string `json:"description"`
}

func (e *Error) Error() string {
	return fmt.Sprintf("yookassa: %d %s: %s", e.Status, e.Code, e.Description)
}

// Client calls the API with the shop's credentials (HTTP basic auth).
type Client struct {
	BaseURL   string // DefaultBaseURL when empty
	ShopID    string
	SecretKey string
	HTTP      *http.Client // default: a client with a 30 s timeout
}

// CreatePayment creates a payment. key is the Idempotence-Key: the same key
// returns the same payment, so a retried or replayed request never makes a
// second one.
func (c *Client) CreatePayment(ctx context.Context, key string, req PaymentRequest) (Payment, error) {
	var p Payment
	err := c.do(ctx, http.MethodPost, "/payments", key, req, &p)
	return p, err
}

// GetPayment reads a payment.
func (c *Client) GetPayment(ctx context.Context, id string) (Payment, error) {
	var p Payment
	err := c.do(ctx, http.MethodGet, "/payments/"+id, "", nil, &p)
	return p, err
}

// CreateRefund refunds amount of a payment (idempotent by key).
func (c *Client) CreateRefund(ctx context.Context, key, paymentID string, amount Amount) (Refund, error) {
	var r Refund
	err := c.do(ctx, http.MethodPost, "/refunds", key, map[string]any{"payment_id": paymentID, "amount": amount}, &r)
	return r, err
}

func (c *Client) do(ctx context.Context, method, path, key string, body, out any) error {
	base := c.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(base, "/")+path, rd)
	if err != nil {
		return err
	}
	req.SetBasicAuth(c.ShopID, c.SecretKey)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotence-Key", key)
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("yookassa %s %s: %w", method, path, errors.Unwrap(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		e := &Error{Status: resp.StatusCode}
		_ = json.Unmarshal(data, e)
		return e
	}
	return json.Unmarshal(data, out)
}
