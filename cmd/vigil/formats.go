package main

import (
	"context"
	"fmt"
	"io"

	"github.com/vigilsec/vigil/parse"
)

func runFormats(_ context.Context, args []string, stdout, stderr io.Writer) error {
	for _, f := range parse.Formats() {
		fmt.Fprintf(stdout, "%-16s %s\n", f.Name, f.Description)
	}
	return nil
}
