package store

import (
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/valex-ai/valex"
)

// BenchmarkChatTurnStorePath is the store's part of one AI chat turn:
// assemble the context (RecentTurns at a 1,000-token budget over 400
// stored turns), then save the exchange (two turns and a usage row). The
// plain variant is the floor: the same work with PlainCodec. Both run with
// NoSync, so the figure is the CPU the codec adds rather than the disk's
// fsync, which would hide it; cpu-µs/op is the figure to compare.
//
//	go test -run '^$' -bench ChatTurnStorePath -count 5 ./store
func BenchmarkChatTurnStorePath(b *testing.B) {
	for _, variant := range []string{"plain", "sealed"} {
		b.Run(variant, func(b *testing.B) {
			dir := b.TempDir()
			var db *DB
			if variant == "sealed" {
				_, db = openKeyed(b, dir)
			} else {
				var err error
				if db, err = Open(filepath.Join(dir, "valex.db"), Options{}); err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { db.Close() })
			}
			db.bolt.NoSync = true
			const uid = 1
			if _, _, err := db.EnsureUser(valex.User{ID: uid, Language: "en"}); err != nil {
				b.Fatal(err)
			}
			now := time.Now()
			text := "How do I make a bbolt transaction commit faster when many small writes arrive together?"
			for i := 0; i < 200; i++ {
				if err := db.SaveExchange(uid, 1, []valex.Turn{{Role: valex.TurnUser, Text: text, Tokens: 20, At: now}, {Role: valex.TurnAssistant, Text: text + text, Tokens: 40, At: now}}, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			for i := 0; i < b.N; i++ {
				if _, _, err := db.RecentTurns(uid, 1, 1000, 0); err != nil {
					b.Fatal(err)
				}
				err := db.SaveExchange(uid, 1,
					[]valex.Turn{{Role: valex.TurnUser, Text: text, Tokens: 20, At: now}, {Role: valex.TurnAssistant, Text: text + text, Tokens: 40, At: now}},
					[]valex.AIUsage{{UserID: uid, Capability: "chat", Model: "gpt-4o-mini", InputTokens: 20, OutputTokens: 40, At: now}})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}

// cpuTime is the process's user+system CPU time: wall time per op is mostly
// the page cache's write path here, CPU time is what the codec costs.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkEraseUser10kTurns erases a user with 10,000 conversation turns
// and a ticket: the key deletion (one fsynced commit in keys.db) and every
// record (one fsynced commit in valex.db). Target < 1 s.
//
//	go test -run '^$' -bench EraseUser10kTurns -count 5 ./store
func BenchmarkEraseUser10kTurns(b *testing.B) {
	keys, db := openKeyed(b, b.TempDir())
	now := time.Now()
	batch := make([]valex.Turn, 500)
	for i := range batch {
		batch[i] = valex.Turn{Role: valex.TurnUser, Text: fmt.Sprintf("turn %d with some words in it", i), Tokens: 8, At: now}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		uid := int64(1000 + i)
		if _, _, err := db.EnsureUser(valex.User{ID: uid, Nickname: "n", Language: "en"}); err != nil {
			b.Fatal(err)
		}
		for j := 0; j < 10000/len(batch); j++ {
			if err := db.SaveExchange(uid, uint64(1+j%5), batch, nil); err != nil {
				b.Fatal(err)
			}
		}
		t, err := db.CreateTicket(valex.Request{UserID: uid, Kind: valex.KindErasure, Status: valex.StatusNew, ReceivedAt: now})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := db.MarkErasure(uid, t.ID, now); err != nil {
			b.Fatal(err)
		}
		if err := keys.Delete(uid); err != nil {
			b.Fatal(err)
		}
		counts, err := db.EraseUser(uid, t.ID, now, nil)
		if err != nil {
			b.Fatal(err)
		}
		if counts[CategoryConversations] != 10000 {
			b.Fatalf("erased %d turns, want 10000", counts[CategoryConversations])
		}
	}
}
