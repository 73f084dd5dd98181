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

	"github.com/vigilsec/vigil/event"
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
	vkey     string // the public key of the ledger's checkpoints
	closed   bool
}

// openData opens the ledger and the store of d, and catches the store up
// with the ledger: after a crash, the events the ledger acknowledged that
// the store had not committed.
// detect, if not nil, is given the events the store gets, from the
// catching up at open on.
func openData(ctx context.Context, d *dataFlags, cfg *config, logger *slog.Logger, reg prometheus.Registerer, detect func([]*event.Event)) (*data, error) {
	if err := d.embedded(cfg); err != nil {
		return nil, err
	}
	l, vkey, err := openLedger(d, cfg, logger)
	if err != nil {
		return nil, err
	}
	db, err := duckdb.Open(duckdb.Options{Path: d.path(storeFile), Logger: logger, Registerer: reg, MemoryLimit: cfg.Store.MemoryLimit})
	if err != nil {
		l.Close()
		if errors.Is(err, duckdb.ErrLocked) {
			return nil, fmt.Errorf("%w: is another 'vigil serve' or 'vigil import' running on %s?", err, d.dir)
		}
		return nil, err
	}
	// A store written before the ledger existed numbers its events on
	// its own, and new events would take seqs it already holds.
	if l.Size() == 0 {
		if st, err := db.Stats(ctx); err != nil || st.Events > 0 {
			db.Close()
			l.Close()
			if err == nil {
				err = fmt.Errorf("%s holds %d events but no ledger: it was written by a vigil without one; move it away and import the logs again", d.path(storeFile), st.Events)
			}
			return nil, err
		}
	}
	p := pipelineFor(l, db, logger)
	p.Detect = detect
	if _, err := p.CatchUp(ctx); err != nil {
		db.Close()
		l.Close()
		return nil, err
	}
	return &data{ledger: l, db: db, pipeline: p, vkey: vkey}, nil
}

// openLedger opens the ledger of d, with its signing key (created on
// first use) and the witnesses of the config. It returns the key's public
// half too.
func openLedger(d *dataFlags, cfg *config, logger *slog.Logger) (*ledger.Ledger, string, error) {
	signer, _, vkey, err := ledger.LoadOrCreateKey(d.path(keyFile), ledgerName)
	if err != nil {
		return nil, "", err
	}
	l, err := ledger.Open(d.path(ledgerDir), ledger.Options{
		Signer:          signer,
		Name:            ledgerName,
		Witnesses:       cfg.Ledger.witnesses(),
		CheckpointEvery: cfg.Ledger.checkpointEvery,
		SegmentBytes:    cfg.Ledger.SegmentBytes,
		Logger:          logger,
	})
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return nil, "", fmt.Errorf("%w: is another 'vigil serve' or 'vigil import' running on %s?", err, d.dir)
	}
	if err != nil {
		return nil, "", fmt.Errorf("opening the ledger: %w", err)
	}
	if r := l.Recovery(); r.BytesTruncated > 0 {
		logger.Warn("the ledger's last segment ended in a torn record, left by a crash; it was cut off",
			"segment", r.Segment, "bytes", r.BytesTruncated, "records", r.RecordsDropped)
	}
	return l, vkey, nil
}

func pipelineFor(l *ledger.Ledger, db *duckdb.DB, logger *slog.Logger) *ingest.Pipeline {
	return &ingest.Pipeline{Ledger: l, Store: db, Logger: logger}
}

// Close closes the store, then the ledger, which signs a last checkpoint.
// Closing again does nothing.
func (d *data) Close() error {
	if d.closed {
		return nil
	}
	d.closed = true
	return errors.Join(d.db.Close(), d.ledger.Close())
}

// witnesses are the ledger's witnesses: files, or http(s) URLs.
func (c *ledgerConfig) witnesses() []ledger.Witness {
	var ws []ledger.Witness
	for _, w := range c.Witnesses {
		if strings.HasPrefix(w, "http://") || strings.HasPrefix(w, "https://") {
			ws = append(ws, ledger.HTTPWitness{URL: w, Client: &http.Client{Timeout: 10 * time.Second}})
		} else {
			ws = append(ws, ledger.FileWitness{Path: w})
		}
	}
	return ws
}
