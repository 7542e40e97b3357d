package bottest

// ParseHTML parses s as Telegram's HTML parse mode does and returns the text
// the user would see and the types of its entities, in order. The error is
// Telegram's "can't parse entities" failure. For tests that check rendered
// texts without sending them (locale templates).
func ParseHTML(s string) (text string, entityTypes []string, err error) {
	f, err := parseHTML(s)
	if err != nil {
		return "", nil, err
	}
	for _, e := range f.entities {
		entityTypes = append(entityTypes, e.Type)
	}
	return f.text, entityTypes, nil
}
