package meta_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/meta"
	"github.com/vigilsec/vigil/meta/metatest"
)

// TestSavedSearches: a search saves under a new id, updates only by its
// owner keeping its creation, lists with the shared ones of others by
// name, and deletes only by its owner; what cannot be stored alike on
// both engines is refused.
func TestSavedSearches(t *testing.T) {
	metatest.Each(t, func(t *testing.T, db *meta.DB) {
		ctx := context.Background()
		at := time.Date(2024, 7, 10, 12, 0, 0, 0, time.UTC)
		// Everyone here reads every tenant: the audience is
		// TestSavedSearchAudience's.
		all := []string{"*"}
		list := func(owner string) ([]meta.SavedSearch, error) { return db.SavedSearches(ctx, owner, nil, true) }
		get := func(id, owner string) (meta.SavedSearch, error) { return db.SavedSearch(ctx, id, owner, nil, true) }

		if _, err := get("nope", "p-ann"); !errors.Is(err, meta.ErrNotFound) {
			t.Fatalf("a missing search: %v", err)
		}
		if ss, err := list("p-ann"); err != nil || len(ss) != 0 {
			t.Fatalf("no searches: %+v %v", ss, err)
		}

		save := func(s meta.SavedSearch) meta.SavedSearch {
			t.Helper()
			out, err := db.SaveSearch(ctx, s)
			if err != nil {
				t.Fatalf("saving %+v: %v", s, err)
			}
			return out
		}
		// ann's: one private, one shared; bob's: one private, one shared.
		// Names sort without regard to case, and alike on both engines.
		annPrivate := save(meta.SavedSearch{Owner: "p-ann", OwnerName: "ann", Name: "root logins", Query: `action:ConsoleLogin actor:"root"`,
			From: "-24h", Columns: "time, actor", Tenant: "team-a", Audience: all, Updated: at})
		annShared := save(meta.SavedSearch{Owner: "p-ann", OwnerName: "ann", Name: "Failed logins", Query: "outcome:failure",
			From: "2024-07-01T00:00:00Z", To: "2024-07-08T00:00:00Z", Shared: true, Audience: all, Updated: at.Add(time.Minute)})
		bobPrivate := save(meta.SavedSearch{Owner: "p-bob", OwnerName: "bob", Name: "bob's own", Query: "x", From: "-7d", Audience: all, Updated: at})
		bobShared := save(meta.SavedSearch{Owner: "p-bob", OwnerName: "bob", Name: "a shared one", Query: "| stats count() by action", From: "", Shared: true, Audience: all, Updated: at})

		want := meta.SavedSearch{ID: annPrivate.ID, Owner: "p-ann", OwnerName: "ann", Name: "root logins", Query: `action:ConsoleLogin actor:"root"`,
			From: "-24h", Columns: "time, actor", Tenant: "team-a", Audience: all, Created: at, Updated: at}
		if !reflect.DeepEqual(annPrivate, want) || len(annPrivate.ID) < 20 {
			t.Errorf("saved %+v, want %+v", annPrivate, want)
		}
		if annShared.ID == annPrivate.ID || !annShared.Shared || annShared.To != "2024-07-08T00:00:00Z" {
			t.Errorf("a second search: %+v", annShared)
		}
		if got, err := get(annPrivate.ID, "p-ann"); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("read back %+v %v, want %+v", got, err, want)
		}

		names := func(ss []meta.SavedSearch) []string {
			var out []string
			for _, s := range ss {
				out = append(out, s.Name)
			}
			return out
		}
		for _, c := range []struct {
			owner string
			want  []string
		}{
			{"p-ann", []string{"a shared one", "Failed logins", "root logins"}},
			{"p-bob", []string{"a shared one", "bob's own", "Failed logins"}},
			{"p-carol", []string{"a shared one", "Failed logins"}},
			{"", []string{"a shared one", "Failed logins"}},
		} {
			ss, err := list(c.owner)
			if err != nil || !slices.Equal(names(ss), c.want) {
				t.Errorf("searches of %q: %q %v, want %q", c.owner, names(ss), err, c.want)
			}
		}

		// Its owner replaces a search: it keeps its id, owner and creation.
		later := at.Add(time.Hour)
		upd := annPrivate
		upd.Name, upd.Query, upd.Shared, upd.Created, upd.Updated = "root logins v2", "actor:root", true, later, later
		got := save(upd)
		want.Name, want.Query, want.Shared, want.Updated = "root logins v2", "actor:root", true, later
		if !reflect.DeepEqual(got, want) {
			t.Errorf("updated %+v, want %+v", got, want)
		}
		if ss, _ := list("p-carol"); len(ss) != 3 {
			t.Errorf("a search shared by an update: carol sees %q", names(ss))
		}

		// Another owner may not replace it, nor delete it: it stays.
		hijack := got
		hijack.Owner, hijack.OwnerName, hijack.Query = "p-bob", "bob", "mine now"
		if _, err := db.SaveSearch(ctx, hijack); !errors.Is(err, meta.ErrNotFound) {
			t.Errorf("bob replacing ann's search: %v", err)
		}
		for _, c := range []struct{ id, owner string }{
			{annPrivate.ID, "p-bob"}, {annShared.ID, "p-bob"}, {annShared.ID, ""}, {"nope", "p-ann"},
		} {
			if err := db.DeleteSearch(ctx, c.id, c.owner); !errors.Is(err, meta.ErrNotFound) {
				t.Errorf("deleting %s as %q: %v", c.id, c.owner, err)
			}
		}
		if s, err := get(annPrivate.ID, "p-ann"); err != nil || !reflect.DeepEqual(s, want) {
			t.Errorf("after bob's tries: %+v %v, want %+v", s, err, want)
		}

		// Owners delete their own.
		for _, s := range []meta.SavedSearch{annPrivate, bobPrivate, bobShared} {
			if err := db.DeleteSearch(ctx, s.ID, s.Owner); err != nil {
				t.Errorf("deleting %s: %v", s.Name, err)
			}
			if _, err := get(s.ID, s.Owner); !errors.Is(err, meta.ErrNotFound) {
				t.Errorf("%s after its deletion: %v", s.Name, err)
			}
		}
		if err := db.DeleteSearch(ctx, bobShared.ID, "p-bob"); !errors.Is(err, meta.ErrNotFound) {
			t.Errorf("deleting twice: %v", err)
		}
		if ss, err := list("p-bob"); err != nil || !slices.Equal(names(ss), []string{"Failed logins"}) {
			t.Errorf("what is left: %q %v", names(ss), err)
		}

		for _, bad := range []struct {
			name string
			s    meta.SavedSearch
		}{
			{"no owner", meta.SavedSearch{Name: "x"}},
			{"no name", meta.SavedSearch{Owner: "p-ann"}},
			{"blank name", meta.SavedSearch{Owner: "p-ann", Name: " \t\n"}},
			{"invalid UTF-8", meta.SavedSearch{Owner: "p-ann", Name: "x", Query: "action:\xff"}},
			{"NUL", meta.SavedSearch{Owner: "p-ann", Name: "a\x00b"}},
		} {
			if _, err := db.SaveSearch(ctx, bad.s); err == nil || errors.Is(err, meta.ErrNotFound) {
				t.Errorf("%s: saved, or %v", bad.name, err)
			}
		}
	})
}

// TestSavedSearchAudience: a shared search is listed to whoever reads a
// tenant its owner read when saving it, and to no one else; a private
// one to its owner only, whatever their scope.
func TestSavedSearchAudience(t *testing.T) {
	metatest.Each(t, func(t *testing.T, db *meta.DB) {
		ctx := context.Background()
		save := func(s meta.SavedSearch) meta.SavedSearch {
			t.Helper()
			out, err := db.SaveSearch(ctx, s)
			if err != nil {
				t.Fatal(err)
			}
			return out
		}
		teamA := save(meta.SavedSearch{Owner: "p-ann", OwnerName: "ann", Name: "incident 42 at team-a", Query: "x", Shared: true, Audience: []string{"team-a"}})
		csirt := save(meta.SavedSearch{Owner: "p-cid", OwnerName: "cid", Name: "CSIRT's", Query: "y", Shared: true, Audience: []string{"*"}})
		save(meta.SavedSearch{Owner: "p-ann", OwnerName: "ann", Name: "ann's own", Query: "z", Audience: []string{"team-a"}})
		partner := save(meta.SavedSearch{Owner: "p-pat", OwnerName: "pat", Name: "a partner's", Query: "w", Shared: true, Audience: []string{}})
		if !slices.Equal(teamA.Audience, []string{"team-a"}) || !slices.Equal(partner.Audience, []string{}) {
			t.Errorf("audiences as stored: %q %q", teamA.Audience, partner.Audience)
		}
		for _, c := range []struct {
			name    string
			owner   string
			tenants []string
			all     bool
			want    string
		}{
			{"another reader of team-a", "p-al", []string{"team-a", "team-c"}, false, "CSIRT's,incident 42 at team-a"},
			{"team-b", "p-bob", []string{"team-b"}, false, "CSIRT's"},
			{"no tenant", "p-nobody", nil, false, "CSIRT's"},
			{"every tenant", "p-root", nil, true, "a partner's,CSIRT's,incident 42 at team-a"},
			{"ann herself, now of team-b only", "p-ann", []string{"team-b"}, false, "ann's own,CSIRT's,incident 42 at team-a"},
		} {
			ss, err := db.SavedSearches(ctx, c.owner, c.tenants, c.all)
			var got []string
			for _, s := range ss {
				got = append(got, s.Name)
			}
			if err != nil || strings.Join(got, ",") != c.want {
				t.Errorf("%s: %q %v, want %s", c.name, got, err, c.want)
			}
			_, err = db.SavedSearch(ctx, teamA.ID, c.owner, c.tenants, c.all)
			if seen := strings.Contains(c.want, teamA.Name); seen != (err == nil) || !seen && !errors.Is(err, meta.ErrNotFound) {
				t.Errorf("%s reads team-a's search: %v", c.name, err)
			}
		}
		// A new save replaces the audience.
		teamA.Audience = []string{"team-b"}
		save(teamA)
		if _, err := db.SavedSearch(ctx, teamA.ID, "p-al", []string{"team-a"}, false); !errors.Is(err, meta.ErrNotFound) {
			t.Errorf("team-a after the audience moved to team-b: %v", err)
		}
		if err := db.DeleteSearch(ctx, csirt.ID, "p-cid"); err != nil {
			t.Fatal(err)
		}
		if ss, _ := db.SavedSearches(ctx, "p-x", nil, true); len(ss) != 2 {
			t.Errorf("after a deletion: %d searches", len(ss))
		}
	})
}
