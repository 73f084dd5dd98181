package meta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Cursor returns how far the pull source has read, as it last said with
// SetCursor, or "" if it never did.
func (db *DB) Cursor(ctx context.Context, source string) (string, error) {
	var cursor string
	err := db.QueryRow(ctx, `SELECT cursor FROM source_cursors WHERE source = $1`, source).Scan(&cursor)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("meta: reading the cursor of %s: %w", source, err)
	}
	return cursor, nil
}

// SetCursor records how far the pull source has read.
func (db *DB) SetCursor(ctx context.Context, source, cursor string) error {
	err := db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO source_cursors (source, cursor, updated) VALUES ($1, $2, $3)
ON CONFLICT (source) DO UPDATE SET cursor = excluded.cursor, updated = excluded.updated`,
			source, cursor, time.Now().UnixNano())
		return err
	})
	if err != nil {
		return fmt.Errorf("meta: saving the cursor of %s: %w", source, err)
	}
	return nil
}
