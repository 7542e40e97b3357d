package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
)

// DefaultAPIURL is Telegram's Bot API.
const DefaultAPIURL = "https://api.telegram.org"

// MaxDownloadSize is the largest file the Bot API lets a bot download.
const MaxDownloadSize = 20 << 20

// ErrFileTooBig is returned for files the Bot API will not hand out.
var ErrFileTooBig = errors.New("file is too big")

// APIError is an error answered by the Bot API (ok=false).
type APIError struct {
	Method      string
	Code        int
	Description string
	RetryAfter  time.Duration
}

func (e *APIError) Error() string {
	return fmt.Sprintf("telegram %s: %d %s", e.Method, e.Code, e.Description)
}

// Client is the Bot API client: the one place that talks to Telegram. It wraps
// tgbotapi so that every call takes a context and no error ever carries the
// token (Go's url.Error quotes the full URL, which contains it).
type Client struct {
	api     *tgbotapi.BotAPI
	http    *http.Client
	baseURL string
	token   string
	self    From
}

// NewClient connects to the Bot API at baseURL (methods at
// {baseURL}/bot{token}/{method}) and checks the token with getMe.
func NewClient(ctx context.Context, baseURL, token string, hc *http.Client) (*Client, error) {
	if baseURL == "" {
		baseURL = DefaultAPIURL
	}
	baseURL = strings.TrimRight(baseURL, "/")
	if hc == nil {
		hc = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second}}
	}
	c := &Client{http: hc, baseURL: baseURL, token: token}
	// Built by hand rather than with NewBotAPIWithClient, whose getMe call
	// takes no context and would leak the token in its error.
	c.api = &tgbotapi.BotAPI{Token: token, Client: hc, Buffer: 0}
	c.api.SetAPIEndpoint(baseURL + "/bot%s/%s")
	var me tgbotapi.User
	resp, err := c.do(ctx, "getMe", tgbotapi.Params{})
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(resp, &me); err != nil {
		return nil, fmt.Errorf("decode getMe: %w", err)
	}
	c.self = fromUser(&me)
	return c, nil
}

// Self is the bot's own account.
func (c *Client) Self() From { return c.self }

// ctxDoer binds one call's context to tgbotapi's context-free requests.
type ctxDoer struct {
	ctx context.Context
	hc  *http.Client
}

func (d ctxDoer) Do(r *http.Request) (*http.Response, error) { return d.hc.Do(r.WithContext(d.ctx)) }

// withCtx returns a shallow copy of the SDK client whose HTTP calls use ctx.
func (c *Client) withCtx(ctx context.Context) *tgbotapi.BotAPI {
	api := *c.api
	api.Client = ctxDoer{ctx: ctx, hc: c.http}
	return &api
}

// request sends one Chattable and returns the raw result.
func (c *Client) request(ctx context.Context, method string, ch tgbotapi.Chattable) (json.RawMessage, error) {
	resp, err := c.withCtx(ctx).Request(ch)
	return c.result(method, resp, err)
}

// do calls a method with raw params (for methods the SDK has no config for).
func (c *Client) do(ctx context.Context, method string, params tgbotapi.Params) (json.RawMessage, error) {
	resp, err := c.withCtx(ctx).MakeRequest(method, params)
	if err != nil {
		return nil, c.wrap(method, err)
	}
	return resp.Result, nil
}

// upload calls a method with raw params and one file, as multipart/form-data
// (for uploads whose parameters the SDK's configs lack).
func (c *Client) upload(ctx context.Context, method string, params tgbotapi.Params, file tgbotapi.RequestFile) (json.RawMessage, error) {
	resp, err := c.withCtx(ctx).UploadFiles(method, params, []tgbotapi.RequestFile{file})
	return c.result(method, resp, err)
}

// result is an upload's or a request's result, or its error as an APIError.
func (c *Client) result(method string, resp *tgbotapi.APIResponse, err error) (json.RawMessage, error) {
	if err != nil {
		err = c.wrap(method, err)
		// tgbotapi drops error_code on multipart uploads; the response still has it.
		var ae *APIError
		if errors.As(err, &ae) && ae.Code == 0 && resp != nil {
			ae.Code = resp.ErrorCode
		}
		return nil, err
	}
	return resp.Result, nil
}

// wrap converts SDK errors into APIError and strips the token from anything else.
func (c *Client) wrap(method string, err error) error {
	var te *tgbotapi.Error
	if errors.As(err, &te) {
		return &APIError{Method: method, Code: te.Code, Description: te.Message, RetryAfter: time.Duration(te.RetryAfter) * time.Second}
	}
	// Keep the context error's identity but drop its text: url.Error quotes the URL.
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("telegram %s: %w", method, context.Canceled)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("telegram %s: %w", method, context.DeadlineExceeded)
	}
	msg := err.Error()
	if c.token != "" {
		msg = strings.ReplaceAll(msg, c.token, "<token>")
	}
	return &NetError{Method: method, Msg: msg}
}

// NetError is a transport failure (connection refused, reset, bad gateway
// page that is not JSON ...). Its text never contains the token.
type NetError struct {
	Method string
	Msg    string
}

func (e *NetError) Error() string { return fmt.Sprintf("telegram %s: %s", e.Method, e.Msg) }

// GetUpdates long-polls for at most limit (1–100) updates and returns each
// one's raw JSON, so the inbox can store exactly what Telegram sent.
func (c *Client) GetUpdates(ctx context.Context, offset, timeoutSec, limit int, allowed []string) ([]json.RawMessage, error) {
	cfg := tgbotapi.UpdateConfig{Offset: offset, Limit: limit, Timeout: timeoutSec, AllowedUpdates: allowed}
	res, err := c.request(ctx, "getUpdates", cfg)
	if err != nil {
		return nil, err
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(res, &raws); err != nil {
		return nil, fmt.Errorf("decode getUpdates: %w", err)
	}
	return raws, nil
}

// FileURL is where the Bot API serves a file: {baseURL}/file/bot{token}/{path}.
// tgbotapi hard-codes api.telegram.org for this, so we build it ourselves.
func (c *Client) FileURL(path string) string {
	return c.baseURL + "/file/bot" + c.token + "/" + strings.TrimLeft(path, "/")
}

// Download fetches a file by id through getFile, refusing files over max bytes.
func (c *Client) Download(ctx context.Context, fileID string, max int64) ([]byte, error) {
	res, err := c.request(ctx, "getFile", tgbotapi.FileConfig{FileID: fileID})
	if err != nil {
		var ae *APIError
		if errors.As(err, &ae) && strings.Contains(ae.Description, "too big") {
			return nil, ErrFileTooBig
		}
		return nil, err
	}
	var f tgbotapi.File
	if err := json.Unmarshal(res, &f); err != nil {
		return nil, fmt.Errorf("decode getFile: %w", err)
	}
	if max > 0 && int64(f.FileSize) > max {
		return nil, ErrFileTooBig
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.FileURL(f.FilePath), nil)
	if err != nil {
		return nil, c.wrap("file", err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.wrap("file", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &APIError{Method: "file", Code: resp.StatusCode, Description: resp.Status}
	}
	limit := max
	if limit <= 0 {
		limit = MaxDownloadSize
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, c.wrap("file", err)
	}
	if int64(len(data)) > limit {
		return nil, ErrFileTooBig
	}
	return data, nil
}

// DeleteWebhook removes a webhook so long polling can run (Telegram answers
// getUpdates with 409 while one is set). Pending updates are kept.
func (c *Client) DeleteWebhook(ctx context.Context) error {
	_, err := c.do(ctx, "deleteWebhook", tgbotapi.Params{"drop_pending_updates": "false"})
	return err
}
