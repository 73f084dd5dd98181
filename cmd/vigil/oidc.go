package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/vigilsec/vigil/web"
)

// oidcFlags are vigil serve's flags for console login through an OpenID
// Connect provider. The client secret is read from a file: on the
// command line every user of the machine could read it (ps), and shells
// keep it in their history.
type oidcFlags struct {
	issuer, clientID, secretFile, redirectURL string
}

func (f *oidcFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.issuer, "oidc-issuer", "", "issuer URL of an OpenID Connect provider to log in to the console through (none: passwords only)")
	fs.StringVar(&f.clientID, "oidc-client-id", "", "vigil's client ID at the OIDC provider")
	fs.StringVar(&f.secretFile, "oidc-client-secret-file", "", "file holding vigil's client secret at the OIDC provider")
	fs.StringVar(&f.redirectURL, "oidc-redirect-url", "", "vigil's callback URL as registered at the OIDC provider (default http://LISTEN"+web.OIDCCallbackPath+")")
}

// login returns the console login the flags configure, or nil if they
// configure none. listen is the address the API listens on, from which
// the redirect URL is derived when not given. A provider that cannot be
// discovered now is logged and tried again at each login: it must not
// keep vigil from starting.
func (f *oidcFlags) login(ctx context.Context, listen string, logger *slog.Logger) (*web.OIDC, error) {
	if f.issuer == "" {
		if f.clientID != "" || f.secretFile != "" || f.redirectURL != "" {
			return nil, errors.New("--oidc-client-id, --oidc-client-secret-file and --oidc-redirect-url need --oidc-issuer")
		}
		return nil, nil
	}
	if f.clientID == "" || f.secretFile == "" {
		return nil, errors.New("--oidc-issuer needs --oidc-client-id and --oidc-client-secret-file")
	}
	b, err := os.ReadFile(f.secretFile)
	if err != nil {
		return nil, fmt.Errorf("reading the OIDC client secret: %w", err)
	}
	secret := strings.TrimSpace(string(b))
	if secret == "" {
		return nil, fmt.Errorf("the OIDC client secret file %s is empty", f.secretFile)
	}
	redirect := f.redirectURL
	if redirect == "" {
		host, port, err := net.SplitHostPort(listen)
		if ip := net.ParseIP(host); err != nil || host == "" || port == "0" || ip != nil && ip.IsUnspecified() {
			return nil, fmt.Errorf("--listen %s is no address for a browser to come back to from the OIDC provider: give --oidc-redirect-url", listen)
		}
		redirect = "http://" + net.JoinHostPort(host, port) + web.OIDCCallbackPath
	}
	o, err := web.NewOIDC(web.OIDCConfig{Issuer: f.issuer, ClientID: f.clientID, ClientSecret: secret, RedirectURL: redirect})
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := o.Discover(dctx); err != nil {
		logger.Warn("OIDC login waits for its provider: each login tries again", "err", err)
	} else {
		logger.Info("OIDC login", "issuer", f.issuer, "redirect_url", redirect)
	}
	return o, nil
}
