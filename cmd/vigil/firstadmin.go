package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"

	"github.com/vigilsec/vigil/access"
)

// passwordFile holds the first administrator's password, as made.
const passwordFile = "admin.password"

// firstAdmin gives the console someone to log in as: on a metadata
// database with no principals, it makes "admin", an administrator of
// every tenant, with a random password written in the data directory
// beside the admin token, readable by its owner only. It returns that
// file's path, or "" once other principals exist or the file is gone
// (the password was changed, or the file deleted after reading it).
func firstAdmin(ctx context.Context, dir *access.Directory, d *dataFlags) (string, error) {
	path := d.path(passwordFile)
	ps, err := dir.Principals(ctx)
	if err != nil {
		return "", err
	}
	if len(ps) > 0 {
		if _, err := os.Stat(path); err == nil && len(ps) == 1 && ps[0].Name == "admin" {
			return path, nil
		}
		return "", nil
	}
	password := rand.Text() // 26 characters, 130 bits
	p, err := dir.CreatePrincipal(ctx, "admin", access.User, "Administrator")
	if err != nil {
		return "", fmt.Errorf("making the first administrator: %w", err)
	}
	err = dir.SetPassword(ctx, p.ID, password)
	if err == nil {
		err = dir.Bind(ctx, access.PrincipalSubject(p.ID), access.Binding{Role: access.Admin, Tenant: access.AllTenants})
	}
	if err == nil {
		// Written beside and renamed, so that no reader sees it empty.
		err = os.WriteFile(path+".tmp", []byte(password+"\n"), 0o600)
		if err == nil {
			err = os.Rename(path+".tmp", path)
		}
	}
	if err != nil {
		return "", errors.Join(fmt.Errorf("making the first administrator: %w", err), dir.Disable(ctx, p.ID))
	}
	return path, nil
}
