package handlers

// The buttons under an answer: "Retry" answers the same question again,
// "Model" picks another model and answers again with it. The question is
// never in the callback data:
//
//   - In a private chat it is read back from the conversation: the button
//     names the conversation and a keyed digest of the question
//     (Signer.Digest), and only while that question is still the
//     conversation's last one can it be answered again. The new answer
//     replaces the old exchange in the history (the question is not
//     repeated; the old answer is dropped).
//   - Groups keep no history: the question is kept for a while in a small
//     bounded memory (askedStore), keyed by the chat and the question's
//     message id, and only its asker may press the buttons.
//
// A retry is a new turn: the consent check, the wallet hold, the user's
// queue and the crash-safe Defer, charged like any other.

import (
	"errors"
	"strconv"
	"strings"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/ai"
	"github.com/valex-ai/valex/bot"
)

// retryRef is where the question of an answer is found.
type retryRef struct {
	group bool
	n     uint64 // private: the conversation; group: the question's message id
	tag   string // private: questionTag of the question
}

// args is the reference in callback data: "p<conv>", tag or "g<message id>"
// (base 36).
func (x retryRef) args() []string {
	if x.group {
		return []string{"g" + strconv.FormatUint(x.n, 36)}
	}
	return []string{"p" + strconv.FormatUint(x.n, 36), x.tag}
}

// parseRetryRef reads a reference from the start of args and returns the
// arguments after it.
func parseRetryRef(args []string) (retryRef, []string, bool) {
	if len(args) == 0 || len(args[0]) < 2 {
		return retryRef{}, nil, false
	}
	n, err := strconv.ParseUint(args[0][1:], 36, 64)
	if err != nil || n == 0 {
		return retryRef{}, nil, false
	}
	switch args[0][0] {
	case 'g':
		return retryRef{group: true, n: n}, args[1:], true
	case 'p':
		if len(args) < 2 || args[1] == "" {
			return retryRef{}, nil, false
		}
		return retryRef{n: n, tag: args[1]}, args[2:], true
	}
	return retryRef{}, nil, false
}

// questionTag names a question of a user's conversation in callback data.
func (a *AI) questionTag(userID int64, conv uint64, question string) string {
	return a.h.CB.Digest("retry", strconv.FormatInt(userID, 10), strconv.FormatUint(conv, 10), question)
}

// retryKeyboard is the keyboard under the answer to in, nil when the
// question cannot be asked again as it was (a photo, or anything whose
// stored form is not what the model read). In a group it keeps the
// question for the buttons (askedStore). plan is the user's.
func (a *AI) retryKeyboard(r *bot.Request, conv uint64, in turnInput, plan string) [][]bot.Button {
	if len(in.image) > 0 || in.text != in.stored || strings.TrimSpace(in.text) == "" {
		return nil
	}
	ref := retryRef{n: conv, tag: a.questionTag(r.From.ID, conv, in.stored)}
	if !r.Private() {
		ref = retryRef{group: true, n: uint64(r.MessageID)}
		context := ""
		if r.ReplyToBot {
			context = r.ReplyText
		}
		a.asked.put(r.ChatID, r.MessageID, askedQuestion{userID: r.From.ID, text: in.text, context: context}, a.h.Clock.Now())
	}
	return a.answerButtons(r, ref, plan)
}

// answerButtons are "Retry" and, when the plan has another chat model,
// "Model" (plan is the user's).
func (a *AI) answerButtons(r *bot.Request, ref retryRef, plan string) [][]bot.Button {
	row := []bot.Button{{Text: a.h.t(r, "ai.retry.btn_again", nil), Data: cbRetry.Data(a.h.CB, append([]string{"r"}, ref.args()...)...)}}
	if a.models.CountModels(ai.CapChat, plan) > 1 {
		row = append(row, bot.Button{Text: a.h.t(r, "ai.retry.btn_model", nil), Data: cbRetry.Data(a.h.CB, append([]string{"m"}, ref.args()...)...)})
	}
	return [][]bot.Button{row}
}

// withoutLastExchange is a conversation's turns without its last exchange
// (the question being answered again, and the answers after it).
func withoutLastExchange(turns []valex.Turn) []valex.Turn {
	n := len(turns)
	for n > 0 && turns[n-1].Role != valex.TurnUser {
		n--
	}
	if n > 0 {
		n--
	}
	return turns[:n]
}

// saveRetried stores a retried exchange in place of the conversation's last
// one, charging it like saveCharged. A conversation deleted while the answer
// was made is told as such; nothing is charged then.
func (a *AI) saveRetried(userID int64, conv uint64, turns []valex.Turn, usage []valex.AIUsage, c valex.Charge) error {
	err := a.store.ReplaceExchangeCharged(userID, conv, turns, usage, c)
	if errors.Is(err, valex.ErrNotFound) {
		return valex.Errorf("ai.retry.gone", nil)
	}
	return err
}
