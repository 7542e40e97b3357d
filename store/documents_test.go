package store

import (
	"errors"
	"testing"
	"time"

	"github.com/valex-ai/valex"
)

func pendingDoc(conv uint64, at time.Time) valex.PendingDocument {
	return valex.PendingDocument{Name: "report.pdf", Pages: 3, Text: "secret quarterly numbers", ChatID: 1,
		Conversation: conv, At: at}
}

func TestDocumentSealedAndRoundTrips(t *testing.T) {
	db := openTest(t, testCodec{})
	mustAccount(t, db, 1)
	want := pendingDoc(2, convT0)
	if err := db.PutDocument(1, want); err != nil {
		t.Fatal(err)
	}
	if hits := aiValuesContaining(t, db, []byte("secret quarterly")); len(hits) != 0 {
		t.Errorf("document text stored in the clear: %v", hits)
	}
	got, ok, err := db.Document(1)
	if err != nil || !ok {
		t.Fatalf("Document = %v, %v", ok, err)
	}
	if got.Text != want.Text || got.Name != want.Name || got.Pages != 3 || got.Conversation != 2 || !got.At.Equal(convT0) || got.ChatID != 1 {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if _, ok, _ := db.Document(2); ok {
		t.Error("another user has a document")
	}
	if err := db.PutDocument(9, want); !errors.Is(err, ErrNoAccount) {
		t.Errorf("put without an account: %v", err)
	}
}

func TestDocumentDropAndPurge(t *testing.T) {
	db := openTest(t, testCodec{})
	mustAccount(t, db, 1, 2)
	_ = db.PutDocument(1, pendingDoc(1, convT0))
	// A drop for an older reading leaves the newer document.
	if err := db.DropDocument(1, convT0.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := db.Document(1); !ok {
		t.Fatal("a drop of another reading deleted the document")
	}
	if err := db.DropDocument(1, convT0); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := db.Document(1); ok {
		t.Fatal("document still there after DropDocument")
	}
	_ = db.PutDocument(1, pendingDoc(1, convT0))
	_ = db.PutDocument(2, pendingDoc(1, convT0.Add(time.Hour)))
	n, err := db.PurgeDocuments(convT0.Add(time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("purge = %d, %v; want 1", n, err)
	}
	if _, ok, _ := db.Document(1); ok {
		t.Error("expired document kept")
	}
	if _, ok, _ := db.Document(2); !ok {
		t.Error("fresh document purged")
	}
}

func TestDocumentGoesWithConversationAndAccount(t *testing.T) {
	db := openTest(t, testCodec{})
	mustAccount(t, db, 1)
	_ = db.PutDocument(1, pendingDoc(2, convT0))
	if _, err := db.DeleteConversation(1, 1); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := db.Document(1); !ok {
		t.Fatal("deleting another conversation deleted the document")
	}
	if _, err := db.DeleteConversation(1, 2); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := db.Document(1); ok {
		t.Fatal("document kept after its conversation was deleted")
	}
	_ = db.PutDocument(1, pendingDoc(5, convT0))
	if _, _, err := db.DeleteConversations(1); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := db.Document(1); ok {
		t.Fatal("document kept after all conversations were deleted")
	}
	_ = db.PutDocument(1, pendingDoc(5, convT0))
	if _, err := db.EraseAI(1); err != nil {
		t.Fatal(err)
	}
	if n := keysWithPrefix(t, db, bucketAIDocuments, idKey(1)); n != 0 {
		t.Fatalf("document kept after erasure: %d keys", n)
	}
}

// The access export shows a waiting document, and erasure counts it.
func TestDocumentInExportAndErasureCounts(t *testing.T) {
	db := openTest(t, testCodec{})
	mustAccount(t, db, 1)
	_ = db.PutDocument(1, pendingDoc(2, convT0))
	data, counts, err := db.ExportAI(1)
	if err != nil {
		t.Fatal(err)
	}
	doc, ok := data[CategoryAIDocument].(exportDocument)
	if !ok || doc.Text != "secret quarterly numbers" || doc.Name != "report.pdf" || counts[CategoryAIDocument] != 1 {
		t.Fatalf("export = %+v, counts %v; want the waiting document", data[CategoryAIDocument], counts)
	}
	erased, err := db.EraseAI(1)
	if err != nil || erased[CategoryAIDocument] != 1 {
		t.Fatalf("erasure counts %v (%v), want the document counted", erased, err)
	}
}
