package ui

import (
	"context"
	"encoding/base64"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/oauth2-proxy/mockoidc"
	"github.com/stretchr/testify/require"
)

// browserCookie returns the browser's session cookie for the UI.
func browserCookie(t *testing.T, ctx context.Context, base string) *network.Cookie {
	t.Helper()
	cookies := get(t, ctx, func(ctx context.Context, tg *chromedp.Target) ([]*network.Cookie, error) {
		res, err := cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{URLs: []string{base + "/"}})
		return res.Cookies, err
	})
	for _, c := range cookies {
		if c.Name == cookieSession {
			return c
		}
	}
	return nil
}

// setBrowserCookie replaces the browser's session cookie's value (HttpOnly: only the DevTools
// protocol can, which is what a user editing their cookies does).
func setBrowserCookie(base, value string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		httpOnly := true
		_, err := cdp.Call(ctx, tg, network.SetCookie, network.SetCookieParams{Name: cookieSession, Value: value, URL: base + "/", Path: "/", HTTPOnly: &httpOnly, SameSite: network.CookieSameSiteLax})
		return err
	})
}

// signInAs fills the sign-in form the browser is on with token and submits it.
func signInAs(token string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(chromedp.WaitVisible(`#signin-form`), chromedp.SetValue(`#token`, token), chromedp.Click(`#signin-submit`))
}

// The acceptance walk in Chromium, with API tokens and OpenID Connect on, in three
// tests (each browser has two minutes): / shows the sign-in page; a wrong token is refused
// with a message; the right token reaches the catalog; sign-out ends the session and the
// back button does not get in (TestBrowserSignIn); the OIDC flow signs a user in through a
// real provider on loopback, and a tampered cookie is refused (TestBrowserSignInOIDC); a
// viewer with only the ui grant sees the catalog but no values, and an expired session is
// refused (TestBrowserSignInViewer).

func TestBrowserSignIn(t *testing.T) {
	a := newAuthServer(t, authOpts{oidc: true, key: strings.Repeat("b", 32)})
	base := a.ts.URL
	ctx := browser(t)

	// / shows the sign-in page, which remembers where the browser was going.
	do(t, ctx, chromedp.Navigate(base+"/runs"), chromedp.WaitVisible(`#signin-form`))
	require.Equal(t, "/signin?next=%2Fruns", path(t, ctx))
	do(t, ctx, chromedp.Navigate(base+"/"), chromedp.WaitVisible(`#signin-form`))
	require.Equal(t, "/signin?next=%2F", path(t, ctx))
	require.Equal(t, "Sign in · shop · Quiver", get(t, ctx, chromedp.Title()))
	require.Equal(t, "Sign in with Test IdP", get(t, ctx, chromedp.Text(`#signin-oidc`)))
	require.Zero(t, get(t, ctx, chromedp.Evaluate[int](`document.scripts.length`)), "no JavaScript")
	shot(t, ctx, "signin")

	// A wrong token is refused with a message.
	do(t, ctx, signInAs("not-a-token"), chromedp.WaitVisible(`#signin-error`))
	require.Contains(t, get(t, ctx, chromedp.Text(`#signin-error`)), "Sign-in failed: unknown API token.")
	require.Nil(t, browserCookie(t, ctx, base))

	// The right token reaches the catalog.
	do(t, ctx, signInAs(readerToken), chromedp.WaitVisible(`#catalog`))
	require.Equal(t, "/", path(t, ctx))
	require.Contains(t, get(t, ctx, chromedp.Text(`#user`)), "Signed in as token:reader")
	c := browserCookie(t, ctx, base)
	require.NotNil(t, c)
	require.True(t, c.HTTPOnly)
	require.Equal(t, network.CookieSameSiteLax, c.SameSite)
	require.Greater(t, c.Expires, float64(time.Now().Add(7*time.Hour).Unix()), "the cookie carries the session's expiry")

	// Sign-out ends the session, and the back button does not get back in.
	do(t, ctx, chromedp.Click(`#sign-out`), chromedp.WaitVisible(`#signin-notice`))
	require.Equal(t, "/signin?reason=signed_out", path(t, ctx))
	require.Equal(t, "You are signed out.", get(t, ctx, chromedp.Text(`#signin-notice`)))
	do(t, ctx, chromedp.NavigateBack(), chromedp.WaitVisible(`#signin-form`))
	require.Equal(t, "/signin?next=%2F", path(t, ctx))
	require.Zero(t, get(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll('#catalog').length`)))
	require.Nil(t, browserCookie(t, ctx, base))

}

func TestBrowserSignInOIDC(t *testing.T) {
	a := newAuthServer(t, authOpts{oidc: true})
	base := a.ts.URL
	ctx := browser(t)

	// OpenID Connect: the provider signs alice in (email as subject, her groups), and the
	// browser lands where it was going.
	a.idp.QueueUser(&mockoidc.MockUser{Subject: "u-1", Email: "alice@example.com", EmailVerified: true, Groups: []string{"data-eng"}})
	do(t, ctx, chromedp.Navigate(base+"/models"), chromedp.WaitVisible(`#signin-oidc`), chromedp.Click(`#signin-oidc`), chromedp.WaitVisible(`#user`))
	require.Equal(t, "/models", path(t, ctx))
	require.Contains(t, get(t, ctx, chromedp.Text(`#user`)), "Signed in as subject:alice@example.com")
	shot(t, ctx, "signed-in")

	// A tampered cookie (one bit of the ciphertext) is refused: back to the sign-in page.
	c := browserCookie(t, ctx, base)
	require.NotNil(t, c)
	raw, err := base64.RawURLEncoding.DecodeString(c.Value)
	require.NoError(t, err)
	raw[len(raw)-1] ^= 0x80
	do(t, ctx, setBrowserCookie(base, base64.RawURLEncoding.EncodeToString(raw)), chromedp.Navigate(base+"/models"), chromedp.WaitVisible(`#signin-notice`))
	require.Equal(t, "/signin?next=%2Fmodels&reason=invalid", path(t, ctx))
	require.Contains(t, get(t, ctx, chromedp.Text(`#signin-notice`)), "Your session cookie was not valid")

}

func TestBrowserSignInViewer(t *testing.T) {
	a := newAuthServer(t, authOpts{})
	base := a.ts.URL
	ctx := browser(t)

	// A viewer with only the ui grant sees the catalog and the dataset's schema, but no
	// values: no column statistics, no distributions.
	do(t, ctx, chromedp.Navigate(base+"/"), signInAs(viewerToken), chromedp.WaitVisible(`#catalog`))
	require.Contains(t, get(t, ctx, chromedp.Text(`#catalog`)), "user_stats")
	do(t, ctx, chromedp.Navigate(base+"/datasets/churn_training"), chromedp.WaitVisible(`#columns`))
	require.Contains(t, get(t, ctx, chromedp.Text(`#columns`)), "user_stats__spend_30d")
	require.Zero(t, get(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll('#columns svg.spark').length`)))
	hidden := get(t, ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#columns td.hidden-values')).map(td => td.textContent)`))
	require.Len(t, hidden, 5, "every column's values are hidden")
	require.Contains(t, hidden, `hidden: values need a grant of feature view "user_stats" in project "shop"`)
	shot(t, ctx, "dataset-viewer")

	// An expired session: nine hours later the page sends the browser to sign in again.
	a.clock.Advance(9 * time.Hour)
	do(t, ctx, chromedp.Navigate(base+"/datasets"), chromedp.WaitVisible(`#signin-notice`))
	require.Equal(t, "/signin?next=%2Fdatasets&reason=expired", path(t, ctx))
	require.Equal(t, "Your session expired. Sign in again.", get(t, ctx, chromedp.Text(`#signin-notice`)))
	// ... and signing in again goes where it was going.
	do(t, ctx, signInAs(readerToken), chromedp.WaitVisible(`#datasets`))
	u, err := url.Parse(get(t, ctx, chromedp.Location()))
	require.NoError(t, err)
	require.Equal(t, "/datasets", u.Path)
}
