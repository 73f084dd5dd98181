package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/note"

	"github.com/vigilsec/vigil/ingest"
	"github.com/vigilsec/vigil/ledger"
	"github.com/vigilsec/vigil/store/duckdb"
)

// ledgerName names the ledger in its checkpoints and its key.
const ledgerName = "vigil"

// data is an open data directory: the ledger, the store derived from it,
// and the pipeline that writes to both.
type data struct {
	ledger   *ledger.Ledger
	db       *duckdb.DB
	pipeline *ingest.Pipeline
	verifier note.Verifier
}

// openData opens the ledger and the store of d, and catches the store up
// with the ledger: after a crash, the events the ledger acknowledged that
// the store had not committed.
func openData(ctx context.Context, d *dataFlags, cfg *config, logger *slog.Logger, reg prometheus.Registerer) (*data, error) {
	signer, verifier, _, err := ledger.LoadOrCreateKey(d.path(keyFile), ledgerName)
	if err != nil {
		return nil, err
	}
	var witnesses []ledger.Witness
	for _, w := range cfg.Ledger.Witnesses {
		if strings.HasPrefix(w, "http://") || strings.HasPrefix(w, "https://") {
			witnesses = append(witnesses, ledger.HTTPWitness{URL: w, Client: &http.Client{Timeout: 10 * time.Second}})
		} else {
			witnesses = append(witnesses, ledger.FileWitness{Path: w})
		}
	}
	l, err := ledger.Open(d.path(ledgerDir), ledger.Options{
		Signer:          signer,
		Name:            ledgerName,
		Witnesses:       witnesses,
		CheckpointEvery: cfg.Ledger.checkpointEvery,
		Logger:          logger,
	})
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return nil, fmt.Errorf("%w: is another 'vigil serve' or 'vigil import' running on %s?", err, d.dir)
	}
	if err != nil {
		return nil, fmt.Errorf("opening the ledger: %w", err)
	}
	if r := l.Recovery(); r.BytesTruncated > 0 {
		logger.Warn("the ledger's last segment ended in a torn record, left by a crash; it was cut off",
			"bytes", r.BytesTruncated, "records", r.RecordsDropped)
	}
	db, err := duckdb.Open(duckdb.Options{Path: d.path(storeFile), Logger: logger, Registerer: reg})
	if err != nil {
		l.Close()
		if errors.Is(err, duckdb.ErrLocked) {
			return nil, fmt.Errorf("%w: is another 'vigil serve' or 'vigil import' running on %s?", err, d.dir)
		}
		return nil, err
	}
	p := &ingest.Pipeline{Ledger: l, Store: db, Logger: logger}
	if _, err := p.CatchUp(ctx); err != nil {
		db.Close()
		l.Close()
		return nil, err
	}
	return &data{ledger: l, db: db, pipeline: p, verifier: verifier}, nil
}

// Close closes the store, then the ledger, which signs a last checkpoint.
func (d *data) Close() error {
	return errors.Join(d.db.Close(), d.ledger.Close())
}
