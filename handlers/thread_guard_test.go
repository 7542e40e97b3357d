package handlers

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// A reply built from a request must go to the request's topic: every
// bot.Message, bot.FileMessage or bot.Invoice literal addressed to
// r.ChatID sets ThreadID too, or the answer to a question asked in a topic
// lands in the General topic. A source check, so no new screen can forget.
func TestRepliesToARequestCarryItsTopic(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.CompositeLit)
			if !ok {
				return true
			}
			sel, ok := lit.Type.(*ast.SelectorExpr)
			if !ok || sel.Sel.Name != "Message" && sel.Sel.Name != "FileMessage" && sel.Sel.Name != "Invoice" {
				return true
			}
			if pkg, ok := sel.X.(*ast.Ident); !ok || pkg.Name != "bot" {
				return true
			}
			toRequest, thread := false, false
			for _, el := range lit.Elts {
				kv, ok := el.(*ast.KeyValueExpr)
				if !ok {
					continue
				}
				switch key := kv.Key.(*ast.Ident); key.Name {
				case "ChatID":
					if v, ok := kv.Value.(*ast.SelectorExpr); ok && v.Sel.Name == "ChatID" {
						toRequest = true // r.ChatID, s.chatID is checked where s is built
					}
				case "ThreadID":
					thread = true
				}
			}
			if toRequest {
				checked++
				if !thread {
					t.Errorf("%s: a reply to r.ChatID without ThreadID", fset.Position(lit.Pos()))
				}
			}
			return true
		})
	}
	if checked < 10 {
		t.Fatalf("only %d replies found: the check is not looking", checked)
	}
}
