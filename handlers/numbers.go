package handlers

import (
	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"golang.org/x/text/number"

	"github.com/valex-ai/valex/ai"
)

// Numbers are formatted by the user's locale (golang.org/x/text): a
// decimal comma and a thin grouping space in Russian, a point and commas
// in English.

func printer(lang string) *message.Printer {
	tag, err := language.Parse(lang)
	if err != nil {
		tag = language.English
	}
	return message.NewPrinter(tag)
}

// decimal formats v with at most frac fraction digits.
func decimal(lang string, v float64, frac int) string {
	return printer(lang).Sprint(number.Decimal(v, number.MaxFractionDigits(frac)))
}

// integer formats n with the locale's digit grouping.
func integer(lang string, n int64) string {
	return printer(lang).Sprint(number.Decimal(n))
}

// credits formats micro-credits as credits with up to four decimals (HTML:
// "less than" is escaped).
func credits(lang string, micro int64) string {
	if micro == 0 {
		return "0"
	}
	if micro < 50 {
		return "&lt;" + decimal(lang, 0.0001, 4)
	}
	return decimal(lang, float64(micro)/ai.MicroCredits, 4)
}
