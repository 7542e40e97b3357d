package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
)

// Payments through the Bot API. Telegram Stars (currency XTR, no provider
// token) are what Telegram requires for digital goods; the parameters are
// our own types, sent through the raw request path, because tgbotapi
// v5.5.1 predates Stars (it always sends provider_token and knows no
// subscription fields).

// CurrencyStars is Telegram Stars.
const CurrencyStars = "XTR"

// Price is one line of an invoice, in the currency's smallest unit (one
// star for XTR).
type Price struct {
	Label  string `json:"label"`
	Amount int    `json:"amount"`
}

// Invoice is a sendInvoice call.
type Invoice struct {
	ChatID      int64
	ThreadID    int    // the topic, as Message.ThreadID (sendInvoice only)
	Title       string // 1–32 characters
	Description string // 1–255 characters
	Payload     string // 1–128 bytes, never shown to the user: ours to verify
	Currency    string
	Prices      []Price
	// ProviderToken is empty for Stars; set for Telegram Payments with a
	// provider.
	ProviderToken string
}

// SendInvoice sends an invoice message and returns its id.
func (o *Outbox) SendInvoice(ctx context.Context, inv Invoice) (int, error) {
	prices, err := json.Marshal(inv.Prices)
	if err != nil {
		return 0, err
	}
	p := tgbotapi.Params{
		"chat_id":     strconv.FormatInt(inv.ChatID, 10),
		"title":       inv.Title,
		"description": inv.Description,
		"payload":     inv.Payload,
		"currency":    inv.Currency,
		"prices":      string(prices),
	}
	if inv.ProviderToken != "" {
		p["provider_token"] = inv.ProviderToken
	}
	if inv.ThreadID != 0 {
		p["message_thread_id"] = strconv.Itoa(inv.ThreadID)
	}
	res, err := o.callRaw(ctx, inv.ChatID, "sendInvoice", p)
	if err != nil {
		return 0, fmt.Errorf("send invoice to chat %d: %w", inv.ChatID, err)
	}
	return messageID(res)
}

// RefundStars refunds a Telegram Stars payment to the user who made it. A
// charge Telegram has refunded already is not an error: a refund retried
// after a crash must converge.
func (o *Outbox) RefundStars(ctx context.Context, userID int64, chargeID string) error {
	_, err := o.callRaw(ctx, 0, "refundStarPayment", tgbotapi.Params{
		"user_id":                    strconv.FormatInt(userID, 10),
		"telegram_payment_charge_id": chargeID,
	})
	var ae *APIError
	if errors.As(err, &ae) && strings.Contains(ae.Description, "CHARGE_ALREADY_REFUNDED") {
		return nil
	}
	if err != nil {
		return fmt.Errorf("refund stars payment: %w", err)
	}
	return nil
}

// SubscriptionPeriod is the only period Telegram allows for a Stars
// subscription: 30 days, in seconds.
const SubscriptionPeriod = 2592000

// CreateSubscriptionLink makes an invoice link for a monthly Stars
// subscription (createInvoiceLink with subscription_period) and returns it.
func (o *Outbox) CreateSubscriptionLink(ctx context.Context, inv Invoice) (string, error) {
	prices, err := json.Marshal(inv.Prices)
	if err != nil {
		return "", err
	}
	res, err := o.callRaw(ctx, 0, "createInvoiceLink", tgbotapi.Params{
		"title":               inv.Title,
		"description":         inv.Description,
		"payload":             inv.Payload,
		"currency":            CurrencyStars,
		"prices":              string(prices),
		"subscription_period": strconv.Itoa(SubscriptionPeriod),
	})
	if err != nil {
		return "", fmt.Errorf("create subscription link: %w", err)
	}
	var link string
	if err := json.Unmarshal(res, &link); err != nil {
		return "", fmt.Errorf("create subscription link: %w", err)
	}
	return link, nil
}

// CancelSubscription stops a Stars subscription from renewing
// (editUserStarSubscription with is_canceled); the period paid runs out.
func (o *Outbox) CancelSubscription(ctx context.Context, userID int64, chargeID string) error {
	_, err := o.callRaw(ctx, 0, "editUserStarSubscription", tgbotapi.Params{
		"user_id":                    strconv.FormatInt(userID, 10),
		"telegram_payment_charge_id": chargeID,
		"is_canceled":                "true",
	})
	if err != nil {
		return fmt.Errorf("cancel subscription: %w", err)
	}
	return nil
}
