package notify_test

import (
	"testing"

	"github.com/chatons/archipelago/internal/notify"
	"github.com/chatons/archipelago/internal/paging"
)

// TestDeliveriesArePagedToTheEnd: a channel's deliveries are read page by page, newest first,
// every one exactly once (the API answered the newest `limit`, at most 500, and nothing
// told that more existed); a page count that is an exact multiple of the limit ends without
// an empty page, and another channel's deliveries never appear.
func TestDeliveriesArePagedToTheEnd(t *testing.T) {
	t.Parallel()
	b := setup(t, notify.Config{})
	ch := b.email(t, "ops@example.org", &b.member)
	other := b.email(t, "other@example.org", &b.member)
	for _, n := range []int{7, 9} { // 7 then 9 deliveries: pages of 3 end short, then exactly
		if _, err := b.pool.Exec(b.ctx, `INSERT INTO notify_deliveries (channel_id, kind, status)
			SELECT $1::bigint, 'test', 'sent' FROM generate_series(1, $2::int) UNION ALL SELECT $3::bigint, 'test', 'sent'`,
			ch.ID, n-len(b.deliveriesOf(t, ch.ID)), other.ID); err != nil {
			t.Fatal(err)
		}
		var got []int64
		req := paging.Request{Limit: 3}
		for pages := 1; ; pages++ {
			pg, err := notify.DeliveryPage(b.ctx, b.pool, ch.ID, req)
			if err != nil {
				t.Fatal(err)
			}
			if len(pg.Items) == 0 {
				t.Fatalf("%d deliveries: page %d is empty", n, pages)
			}
			for _, d := range pg.Items {
				if d.ChannelID != ch.ID {
					t.Fatalf("delivery %d of channel %d in channel %d's pages", d.ID, d.ChannelID, ch.ID)
				}
				if len(got) > 0 && d.ID >= got[len(got)-1] {
					t.Fatalf("not newest first: %d after %d", d.ID, got[len(got)-1])
				}
				got = append(got, d.ID)
			}
			if pg.Next == "" {
				if want := (n + 2) / 3; pages != want {
					t.Fatalf("%d deliveries: %d pages of 3, want %d", n, pages, want)
				}
				break
			}
			req.Cursor = pg.Next
		}
		if len(got) != n {
			t.Fatalf("%d deliveries, %d read through the pages", n, len(got))
		}
	}
}

// deliveriesOf reads every delivery of a channel through its pages.
func (b *bundle) deliveriesOf(t *testing.T, ch int64) []notify.Delivery {
	t.Helper()
	var out []notify.Delivery
	req := paging.Request{Limit: 500}
	for {
		pg, err := notify.DeliveryPage(b.ctx, b.pool, ch, req)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, pg.Items...)
		if pg.Next == "" {
			return out
		}
		req.Cursor = pg.Next
	}
}
