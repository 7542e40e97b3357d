package store

import (
	"bytes"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/valex-ai/valex"
)

var (
	auditTestKey  = []byte("the key store's audit key, 32 b.")
	auditWrongKey = []byte("someone else's audit key........")
)

// auditFixture is a store keyed with auditTestKey holding ticket a (user
// 42: four entries), ticket b (user 43: one entry) and a system trail of a
// hold placed, a breach notice to both users and the hold lifted.
type auditFixture struct {
	db   *DB
	path string
	a, b uint64
}

func newAuditFixture(tb testing.TB) auditFixture {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "valex.db")
	db := openAudit(tb, path, auditTestKey)
	for _, id := range []int64{42, 43} {
		must(tb, db.PutUser(valex.User{ID: id, Nickname: "n", Language: "en", CreatedAt: t0, LastActiveAt: t0}))
	}
	a := mustCreate(tb, db, newTicket(tb, valex.KindAccess, 42, "", t0))
	for i, to := range []valex.RequestStatus{valex.StatusInProgress, valex.StatusWaitingUser, valex.StatusInProgress} {
		transition(tb, db, a.ID, to, 7, "", t0.Add(time.Duration(i+1)*time.Hour))
	}
	b := mustCreate(tb, db, newTicket(tb, valex.KindAccess, 43, "", t0))
	must(tb, db.SetHold(42, true, 7, t0.Add(time.Hour)))
	if _, err := db.CreateNotice(valex.Notice{Kind: valex.NoticeBreach, Text: "t", UserIDs: []int64{42, 43}, CreatedAt: t0.Add(2 * time.Hour), CreatedBy: 8}); err != nil {
		tb.Fatal(err)
	}
	must(tb, db.SetHold(42, false, 9, t0.Add(3*time.Hour)))
	return auditFixture{db: db, path: path, a: a.ID, b: b.ID}
}

func openAudit(tb testing.TB, path string, key []byte) *DB {
	tb.Helper()
	db, err := Open(path, Options{AuditKey: key})
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	return db
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

func verify(tb testing.TB, db *DB) AuditReport {
	tb.Helper()
	rep, err := db.VerifyAudit()
	if err != nil {
		tb.Fatal(err)
	}
	return rep
}

// reseal rewrites entries [from, to] of a trail as an attacker without the
// key would: the changed contents, then every MAC after recomputed with
// mac, links and head included.
func reseal(tx *bbolt.Tx, trail uint64, edit func(*valex.AuditEntry), mac func(*valex.AuditEntry)) error {
	entries, err := auditOf(tx, trail)
	if err != nil {
		return err
	}
	var prev [32]byte
	for i := range entries {
		e := &entries[i]
		edit(e)
		e.PrevMAC = prev
		mac(e)
		prev = e.MAC
		if err := tx.Bucket(bucketAudit).Put(auditKey(trail, e.Seq), encodeAudit(*e)); err != nil {
			return err
		}
	}
	return putAuditHead(tx, entries[len(entries)-1])
}

// Breach notices and legal holds are on the system trail, with the actor
// and counts but no user id, and verify.
func TestAuditSystemTrail(t *testing.T) {
	f := newAuditFixture(t)
	must(t, f.db.SetHold(43, false, 9, t0.Add(4*time.Hour))) // no hold stood: nothing happened, nothing audited
	trail, err := f.db.Audit(valex.SystemTrail)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range trail {
		got = append(got, e.Action+":"+e.Detail+":"+time.Duration(e.At.Sub(t0)).String())
		if e.TicketID != valex.SystemTrail {
			t.Errorf("entry of trail %d in the system trail", e.TicketID)
		}
	}
	want := []string{"hold_placed:scope=account:1h0m0s", "notice_created:kind=breach,notice=1,recipients=2:2h0m0s", "hold_lifted:scope=account:3h0m0s"}
	if !slices.Equal(got, want) {
		t.Fatalf("system trail = %q\nwant %q", got, want)
	}
	if actors := []int64{trail[0].Actor, trail[1].Actor, trail[2].Actor}; !slices.Equal(actors, []int64{7, 8, 9}) {
		t.Errorf("actors = %v, want 7 8 9", actors)
	}
	for _, e := range trail {
		if strings.Contains(e.Detail, "42") || strings.Contains(e.Detail, "43") {
			t.Errorf("system entry names a user: %q", e.Detail)
		}
	}
	if err := valex.VerifyChain(auditTestKey, trail); err != nil {
		t.Fatal(err)
	}
	rep := verify(t, f.db)
	if !rep.OK() || rep.Tickets != 2 || rep.Entries != 5 || rep.System != 3 || rep.Anchors != 8 {
		t.Fatalf("VerifyAudit = %+v", rep)
	}
}

// Each way of deleting or rewriting audit entries is named: which trail,
// what kind, where.
func TestVerifyAuditNamesTampering(t *testing.T) {
	type want struct {
		trail uint64 // 0 with log: the global log; a or b stand for the fixture's tickets
		log   bool
		kind  AuditProblemKind
		seqs  []uint64
	}
	const a, b = 1001, 1002 // placeholders for the fixture's ticket ids
	tests := []struct {
		name   string
		tamper func(tx *bbolt.Tx, f auditFixture) error
		want   []want
	}{
		{"whole ticket and trail deleted", func(tx *bbolt.Tx, f auditFixture) error {
			for s := uint64(1); s <= 4; s++ {
				must(t, tx.Bucket(bucketAudit).Delete(auditKey(f.a, s)))
			}
			must(t, tx.Bucket(bucketTickets).Delete(ticketKey(f.a)))
			return tx.Bucket(bucketAuditHeads).Delete(ticketKey(f.a))
		}, []want{{trail: a, kind: AuditDeletedTrail, seqs: []uint64{1, 2, 3, 4}}}},
		{"rewritten, plain SHA-256 recomputed", func(tx *bbolt.Tx, f auditFixture) error {
			return reseal(tx, f.a, func(e *valex.AuditEntry) {
				if e.Seq == 2 {
					e.Detail = "from=new,to=rejected"
				}
			}, func(e *valex.AuditEntry) { e.MAC = e.LegacyHash() })
		}, []want{{trail: a, kind: AuditRewritten, seqs: []uint64{1, 2, 3, 4}}}},
		{"rewritten, MACs recomputed with a wrong key", func(tx *bbolt.Tx, f auditFixture) error {
			return reseal(tx, f.a, func(e *valex.AuditEntry) {
				if e.Seq == 3 {
					e.Actor = 666
				}
			}, func(e *valex.AuditEntry) { e.Seal(auditWrongKey, e.PrevMAC) })
		}, []want{{trail: a, kind: AuditRewritten, seqs: []uint64{1, 2, 3, 4}}}},
		{"middle entry removed", func(tx *bbolt.Tx, f auditFixture) error {
			return tx.Bucket(bucketAudit).Delete(auditKey(f.a, 2))
		}, []want{{trail: a, kind: AuditGap, seqs: []uint64{2}}}},
		{"last entry removed, head moved back", func(tx *bbolt.Tx, f auditFixture) error {
			entries, err := auditOf(tx, f.a)
			must(t, err)
			must(t, tx.Bucket(bucketAudit).Delete(auditKey(f.a, 4)))
			return putAuditHead(tx, entries[2])
		}, []want{{trail: a, kind: AuditCutOff, seqs: []uint64{4}}}},
		{"system trail entry removed", func(tx *bbolt.Tx, f auditFixture) error {
			return tx.Bucket(bucketAudit).Delete(auditKey(valex.SystemTrail, 2))
		}, []want{{trail: valex.SystemTrail, kind: AuditGap, seqs: []uint64{2}}}},
		{"global log record removed", func(tx *bbolt.Tx, f auditFixture) error {
			return tx.Bucket(bucketAuditLog).Delete(ticketKey(3))
		}, []want{{log: true, kind: AuditGap, seqs: []uint64{3}}, {trail: a, kind: AuditUnanchored, seqs: []uint64{3}}}},
		{"global log tail cut", func(tx *bbolt.Tx, f auditFixture) error {
			return tx.Bucket(bucketAuditLog).Delete(ticketKey(8))
		}, []want{{log: true, kind: AuditCutOff, seqs: []uint64{8}}, {trail: valex.SystemTrail, kind: AuditUnanchored, seqs: []uint64{3}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newAuditFixture(t)
			if rep := verify(t, f.db); !rep.OK() {
				t.Fatalf("before tampering: %+v", rep.Problems)
			}
			must(t, f.db.update(func(tx *bbolt.Tx) error { return tt.tamper(tx, f) }))
			rep := verify(t, f.db)
			var got []string
			for _, p := range rep.Problems {
				got = append(got, p.String())
			}
			var wantS []string
			for _, w := range tt.want {
				trail := map[uint64]uint64{a: f.a, b: f.b}[w.trail]
				if w.trail == valex.SystemTrail {
					trail = valex.SystemTrail
				}
				p := AuditProblem{Trail: trail, Log: w.log, Kind: w.kind, Seqs: w.seqs}
				found := false
				for _, q := range rep.Problems {
					found = found || (q.Trail == p.Trail && q.Log == p.Log && q.Kind == p.Kind && slices.Equal(q.Seqs, p.Seqs))
				}
				if !found {
					t.Errorf("no problem %s", p)
				}
				wantS = append(wantS, p.String())
			}
			if len(rep.Problems) != len(tt.want) {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantS, "\n"))
			}
		})
	}
}

// The key decides: a reader with another key learns only that, a writer
// with another key is refused before it appends anything.
func TestAuditKeyMismatch(t *testing.T) {
	f := newAuditFixture(t)
	must(t, f.db.Close())
	ro, err := Open(f.path, Options{ReadOnly: true, AuditKey: auditWrongKey})
	if err != nil {
		t.Fatal(err)
	}
	rep := verify(t, ro)
	if len(rep.Problems) != 1 || rep.Problems[0].Kind != AuditWrongKey {
		t.Fatalf("verify with another key: %+v", rep.Problems)
	}
	must(t, ro.Close())
	before := rawAuditBytes(t, f.path)
	for _, key := range [][]byte{auditWrongKey, nil} {
		if db, err := Open(f.path, Options{AuditKey: key}); err == nil {
			_ = db.Close()
			t.Fatalf("read-write open with key %q succeeded", key)
		} else if !strings.Contains(err.Error(), "another audit key") {
			t.Errorf("error = %v", err)
		}
	}
	if !bytes.Equal(before, rawAuditBytes(t, f.path)) {
		t.Error("a refused open changed the audit")
	}
	if rep := verify(t, openAudit(t, f.path, auditTestKey)); !rep.OK() {
		t.Fatalf("with the right key: %+v", rep.Problems)
	}
}

func rawAuditBytes(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	must(tb, err)
	defer b.Close()
	var out []byte
	must(tb, b.View(func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{bucketAudit, bucketAuditHeads, bucketAuditLog} {
			if err := tx.Bucket(name).ForEach(func(k, v []byte) error {
				out = append(append(out, k...), v...)
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	}))
	return out
}

// toLegacy turns the fixture's file into what a build before keyed trails
// left: unkeyed SHA-256 chains, no global log, no key id, the schema before
// the audit log's migration.
func toLegacy(tb testing.TB, db *DB) {
	tb.Helper()
	must(tb, db.update(func(tx *bbolt.Tx) error {
		var all []valex.AuditEntry
		if err := tx.Bucket(bucketAudit).ForEach(func(k, v []byte) error {
			e, err := decodeAudit(k, v)
			all = append(all, e)
			return err
		}); err != nil {
			return err
		}
		var prev [32]byte
		for i := range all {
			e := &all[i]
			if e.Seq == 1 {
				prev = [32]byte{}
			}
			e.PrevMAC = prev
			e.MAC = e.LegacyHash()
			prev = e.MAC
			must(tb, tx.Bucket(bucketAudit).Put(auditKey(e.TicketID, e.Seq), encodeAudit(*e)))
			must(tb, putAuditHead(tx, *e))
		}
		must(tb, tx.DeleteBucket(bucketAuditLog))
		must(tb, tx.Bucket(bucketMeta).Delete(keyAuditRoot))
		must(tb, tx.Bucket(bucketMeta).Delete(keyAuditKeyID))
		return putUint64(tx, keySchemaVersion, 3) // before v4, createAuditLog
	}))
	must(tb, db.Close())
}

// An upgraded file's unkeyed trails are re-keyed and anchored, and verify;
// what was already broken stays reported, not laundered.
func TestAuditMigrationRekeysLegacyTrails(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(tx *bbolt.Tx, f auditFixture) error
		want   []string
	}{
		{"intact", nil, nil},
		{"edited before the upgrade", func(tx *bbolt.Tx, f auditFixture) error {
			b := tx.Bucket(bucketAudit)
			v := bytes.Clone(b.Get(auditKey(f.a, 3)))
			i := bytes.Index(v, []byte("waiting_user"))
			copy(v[i:], "rejected____")
			return b.Put(auditKey(f.a, 3), v)
		}, []string{"ticket %d: rewritten entry at 3-4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newAuditFixture(t)
			toLegacy(t, f.db)
			if tt.tamper != nil {
				old, err := bbolt.Open(f.path, 0o600, nil)
				must(t, err)
				must(t, old.Update(func(tx *bbolt.Tx) error { return tt.tamper(tx, f) }))
				must(t, old.Close())
			}
			db := openAudit(t, f.path, auditTestKey)
			if v, err := db.SchemaVersion(); err != nil || v != len(migrations) {
				t.Fatalf("schema version %d, %v", v, err)
			}
			rep := verify(t, db)
			var got []string
			for _, p := range rep.Problems {
				got = append(got, p.String())
			}
			var want []string
			for _, w := range tt.want {
				want = append(want, fmt.Sprintf(w, f.a))
			}
			if !slices.Equal(got, want) {
				t.Fatalf("after the upgrade: %q, want %q", got, want)
			}
			if rep.Anchors != 8 || rep.Tickets != 2 || rep.System != 3 {
				t.Errorf("report %+v", rep)
			}
			// The re-keyed trails take new entries and still verify.
			if _, err := db.AppendAudit(f.b, valex.AuditEntry{At: t0.Add(5 * time.Hour), Action: valex.AuditReminded, Detail: "d7"}); err != nil {
				t.Fatal(err)
			}
			trail, err := db.Audit(f.b)
			if err != nil || valex.VerifyChain(auditTestKey, trail) != nil || len(trail) != 2 {
				t.Fatalf("trail of b after the upgrade: %+v, %v", trail, err)
			}
			if rep := verify(t, db); len(rep.Problems) != len(tt.want) {
				t.Errorf("after an append: %+v", rep.Problems)
			}
		})
	}
}
