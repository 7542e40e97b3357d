package main

import (
	"fmt"
	"net"
	"net/url"
	"sort"
)

// Warnings are what `valex check` lists besides errors: a configuration
// that runs, but not as an operator should ship it.
func (c Config) Warnings() []string {
	var w []string
	if len(c.Admins) == 0 {
		w = append(w, "no admin (admins / VALEX_ADMINS): nobody can publish a policy update, place a legal hold or send a breach notice")
	}
	if len(c.Support) == 0 && len(c.Admins) == 0 {
		w = append(w, "no support staff (support / VALEX_SUPPORT): privacy requests reach nobody")
	}
	ai := c.AI.withDefaults()
	var names []string
	for name := range ai.Providers {
		names = append(names, name)
	}
	sort.Strings(names)
	used := map[string]bool{}
	for _, m := range ai.Models {
		used[m.Provider] = true
	}
	for _, name := range names {
		p := ai.Providers[name]
		if used[name] && p.APIKey == "" {
			w = append(w, fmt.Sprintf("AI provider %s has no key (%s): its models will fail", name, p.APIKeyEnv))
		}
		if insecure(p.BaseURL) {
			w = append(w, fmt.Sprintf("AI provider %s: %s is not HTTPS (the policy promises encrypted transfer)", name, p.BaseURL))
		}
	}
	if insecure(c.Telegram.APIURL) {
		w = append(w, fmt.Sprintf("telegram api_url %s is not HTTPS", c.Telegram.APIURL))
	}
	// The policy promises these periods; shorter ones break the promise.
	if rd := DefaultRetention(); c.Retention.InactiveMonths < rd.InactiveMonths {
		w = append(w, fmt.Sprintf("retention inactive_months %d is shorter than the policy's %d: accounts would be deleted earlier than users are told",
			c.Retention.InactiveMonths, rd.InactiveMonths))
	}
	if rd := DefaultRetention(); c.Retention.InactiveGraceDays < rd.InactiveGraceDays {
		w = append(w, fmt.Sprintf("retention inactive_grace_days %d is shorter than the policy's %d days of notice", c.Retention.InactiveGraceDays, rd.InactiveGraceDays))
	}
	d := DefaultDeskConfig()
	if c.Desk.PolicyURL == d.PolicyURL {
		w = append(w, "desk policy_url is the default "+d.PolicyURL+": point it at your own privacy policy")
	}
	if c.Desk.SupportURL == d.SupportURL {
		w = append(w, "desk support_url is the default "+d.SupportURL+": point it at your own support contact")
	}
	if c.HTTPAddr != "" {
		if host, _, err := net.SplitHostPort(c.HTTPAddr); err == nil && !loopback(host) {
			w = append(w, fmt.Sprintf("http_addr %s is reachable from outside: /metrics has no authentication", c.HTTPAddr))
		}
	}
	return w
}

// insecure reports whether u is plain HTTP to a host that is not loopback.
func insecure(u string) bool {
	p, err := url.Parse(u)
	return err == nil && p.Scheme == "http" && !loopback(p.Hostname())
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
