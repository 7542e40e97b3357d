package handlers

import (
	"strings"
	"testing"

	"github.com/valex-ai/valex/ai/aitest"
	"github.com/valex-ai/valex/bot/bottest"
	"github.com/valex-ai/valex/doctext/doctexttest"
)

// Documents over both emulators: real PDFs and DOCX packages built in the
// test, downloaded through getFile, read, and sent to the AI emulator.

// sentToProvider reports whether any message of any AI request contains s.
func (x *aiHarness) sentToProvider(s string) bool {
	for _, req := range x.aisv.Requests() {
		for _, m := range req.Messages {
			if strings.Contains(m.Text, s) {
				return true
			}
		}
	}
	return false
}

func (x *aiHarness) hasPendingDocument(u bottest.User) bool {
	x.t.Helper()
	_, ok, err := x.db.Document(u.ID)
	if err != nil {
		x.t.Fatal(err)
	}
	return ok
}

func TestDocumentPDFWithCaptionReachesTheProvider(t *testing.T) {
	x := newAIHarness(t, nil)
	x.register(ann, true)
	pdf := doctexttest.FlatePDF("Project Falcon launch plan", "The launch code is PINEAPPLE-42.")
	x.emu.SendDocumentCaption(bottest.PrivateChat(ann), ann, pdf, "plan.pdf", "application/pdf", "what is the launch code?")
	x.idle()
	if got := x.lastText(ann.ID); got != "echo: what is the launch code?" {
		t.Fatalf("answer = %q (all: %q)", got, x.texts(ann.ID))
	}
	reqs := x.aisv.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d AI requests", len(reqs))
	}
	msgs := reqs[0].Messages
	doc := msgs[len(msgs)-2]
	if doc.Role != "user" || !strings.Contains(doc.Text, "[document: plan.pdf]") || !strings.Contains(doc.Text, "PINEAPPLE-42") || !strings.Contains(doc.Text, "Project Falcon") {
		t.Errorf("document message = %+v", doc)
	}
	if x.emu.Count("getFile") != 1 {
		t.Errorf("getFile calls = %d", x.emu.Count("getFile"))
	}
	// The history keeps the document (it is small) with the question.
	if h := x.history(ann); len(h) != 2 || !strings.Contains(h[0].Text, "PINEAPPLE-42") || !strings.HasSuffix(h[0].Text, "what is the launch code?") {
		t.Errorf("history = %+v", h)
	}
	if x.hasPendingDocument(ann) {
		t.Error("a document with a caption was also kept for later")
	}
}

func TestDocumentDOCXWithoutCaptionIsUsedByTheNextMessage(t *testing.T) {
	x := newAIHarness(t, nil)
	x.register(ann, true)
	docx := doctexttest.DOCX("Minutes of the meeting", "Decision:\tbudget approved for WALRUS-7")
	x.emu.SendDocument(bottest.PrivateChat(ann), ann, docx, "minutes.docx",
		"application/vnd.openxmlformats-officedocument.wordprocessingml.document")
	x.idle()
	got := x.lastText(ann.ID)
	if !strings.Contains(got, "I read minutes.docx (about") || !strings.Contains(got, "tokens") || !strings.Contains(got, "next message") {
		t.Fatalf("told %q", got)
	}
	if x.aisv.Count() != 0 {
		t.Fatal("a document without a question went to the provider")
	}
	if !x.hasPendingDocument(ann) {
		t.Fatal("the document was not kept")
	}
	x.say(ann, "which project got a budget?")
	if got := x.lastText(ann.ID); got != "echo: which project got a budget?" {
		t.Fatalf("answer = %q", got)
	}
	if !x.sentToProvider("budget approved for WALRUS-7") {
		t.Fatal("the document's text did not reach the provider")
	}
	if x.hasPendingDocument(ann) {
		t.Error("the document is still pending after it was used")
	}
	// The next question sees it through the history, not as a new document.
	x.say(ann, "and the decision again?")
	last := x.aisv.Requests()[1].Messages
	if n := strings.Count(strings.Join(msgTexts(last), "\n"), "WALRUS-7"); n != 1 {
		t.Errorf("the document appears %d times in the follow-up", n)
	}
}

func msgTexts(ms []aitest.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Text
	}
	return out
}

func TestDocumentsRefusedClearly(t *testing.T) {
	tests := []struct {
		name    string
		send    func(x *aiHarness)
		want    string
		maxPage int
	}{
		{name: "over Telegram's download limit", want: "up to 10 MB", send: func(x *aiHarness) {
			x.emu.SendDocumentSized(bottest.PrivateChat(ann), ann, 25<<20, "huge.pdf", "application/pdf", "read it")
		}},
		{name: "over the configured size", want: "up to 10 MB", send: func(x *aiHarness) {
			x.emu.SendDocumentSized(bottest.PrivateChat(ann), ann, 12<<20, "big.pdf", "application/pdf", "")
		}},
		{name: "too many pages", maxPage: 2, want: "more than 2 pages", send: func(x *aiHarness) {
			x.emu.SendDocumentCaption(bottest.PrivateChat(ann), ann, doctexttest.PDF("one", "two", "three"), "long.pdf", "application/pdf", "summary?")
		}},
		{name: "scanned", want: "looks like a scan", send: func(x *aiHarness) {
			x.emu.SendDocumentCaption(bottest.PrivateChat(ann), ann, doctexttest.PDF("", ""), "scan.pdf", "application/pdf", "what does it say?")
		}},
		{name: "executable", want: "setup.exe is none of them", send: func(x *aiHarness) {
			x.emu.SendDocumentCaption(bottest.PrivateChat(ann), ann, []byte("MZ\x90\x00"), "setup.exe", "application/x-msdownload", "run it")
		}},
		{name: "image as a file", want: "Photos go as photos", send: func(x *aiHarness) {
			x.emu.SendDocument(bottest.PrivateChat(ann), ann, testJPEG(x.t), "cat.jpg", "image/jpeg")
		}},
		{name: "binary named .txt", want: "not readable text", send: func(x *aiHarness) {
			x.emu.SendDocument(bottest.PrivateChat(ann), ann, []byte("\x00\x01\x02binary"), "notes.txt", "text/plain")
		}},
		{name: "damaged pdf", want: "seems damaged", send: func(x *aiHarness) {
			x.emu.SendDocument(bottest.PrivateChat(ann), ann, doctexttest.PDF("text")[:150], "broken.pdf", "application/pdf")
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := newAIHarness(t, func(hc *harnessConfig) { hc.opts.Documents.MaxPages = tc.maxPage })
			x.register(ann, true)
			tc.send(x)
			x.idle()
			if got := x.lastText(ann.ID); !strings.Contains(got, tc.want) {
				t.Fatalf("told %q, want %q", got, tc.want)
			}
			if x.aisv.Count() != 0 {
				t.Errorf("%d AI requests", x.aisv.Count())
			}
			if x.hasPendingDocument(ann) {
				t.Error("a refused document was kept")
			}
			if f := x.failedCalls(); len(f) != 0 && tc.name != "over Telegram's download limit" {
				t.Errorf("failed calls: %v", f)
			}
		})
	}
}

func TestDocumentWithoutAIConsentIsNotRead(t *testing.T) {
	x := newAIHarness(t, nil)
	x.register(ann, false)
	x.emu.SendDocumentCaption(bottest.PrivateChat(ann), ann, doctexttest.PDF("SECRET-PLAN"), "plan.pdf", "application/pdf", "summarise")
	x.idle()
	texts := strings.Join(x.texts(ann.ID), "|")
	if !strings.Contains(texts, "send the document again") {
		t.Fatalf("told %q", texts)
	}
	if x.aisv.Count() != 0 || x.emu.Count("getFile") != 0 || x.hasPendingDocument(ann) {
		t.Fatalf("without consent: %d AI requests, %d downloads, kept %v", x.aisv.Count(), x.emu.Count("getFile"), x.hasPendingDocument(ann))
	}
	// Agreeing does not send it either: the user sends it again.
	x.press(ann, bottest.PrivateChat(ann), "agree")
	if x.aisv.Count() != 0 || x.sentToProvider("SECRET-PLAN") {
		t.Fatal("the document went to the provider after the consent without being sent again")
	}
}

func TestDocumentInAGroupNeedsACaptionedMention(t *testing.T) {
	x := newAIHarness(t, nil)
	x.register(ann, true)
	group := bottest.Chat{ID: -100500, Type: "supergroup", Title: "team"}
	// Not addressed to the bot: ignored.
	x.emu.SendDocument(group, ann, doctexttest.PDF("quiet"), "a.pdf", "application/pdf")
	x.idle()
	if len(x.texts(group.ID)) != 0 || x.aisv.Count() != 0 {
		t.Fatalf("answered an unaddressed document: %q", x.texts(group.ID))
	}
	x.emu.SendDocumentCaption(group, ann, doctexttest.PDF("Team offsite in LISBON"), "offsite.pdf", "application/pdf", "@valex_bot where is the offsite?")
	x.idle()
	if got := x.lastText(group.ID); got != "echo: where is the offsite?" {
		t.Fatalf("group answer = %q", got)
	}
	if !x.sentToProvider("LISBON") {
		t.Fatal("the document did not reach the provider")
	}
	if x.hasPendingDocument(ann) || len(x.history(ann)) != 0 {
		t.Error("a group document was kept")
	}
}

func TestPendingDocumentGoesWithDeletedConversations(t *testing.T) {
	x := newConvHarness(t)
	x.register(ann, true)
	x.say(ann, "first question")
	x.emu.SendDocument(bottest.PrivateChat(ann), ann, []byte("Private diary: KIWI-9"), "diary.md", "text/markdown")
	x.idle()
	if !x.hasPendingDocument(ann) {
		t.Fatal("the document was not kept")
	}
	x.say(ann, "/conversations")
	x.press(ann, bottest.PrivateChat(ann), "Delete all")
	x.press(ann, bottest.PrivateChat(ann), "Yes, delete all")
	if x.hasPendingDocument(ann) {
		t.Fatal("the pending document survived deleting the conversations")
	}
	x.say(ann, "what was in the diary?")
	if x.sentToProvider("KIWI-9") {
		t.Fatal("a deleted document reached the provider")
	}
}
