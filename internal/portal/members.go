package portal

import (
	"net/http"

	"github.com/chatons/archipelago/internal/islands"
)

type memberRow struct {
	Member    islands.Member
	Operates  []string // island names
	Pledged   int64
	Pledges   int
	NotActive int
}

type membersData struct {
	Members []memberRow
}

// Members lists the federation's member organisations, what they operate and pledge.
func (p *Portal) Members(w http.ResponseWriter, r *http.Request) {
	ms, err := islands.MemberList(r.Context(), p.pool, islands.MemberFilter{Limit: 500})
	if err != nil {
		p.fail(w, r, err)
		return
	}
	isls, err := islands.IslandList(r.Context(), p.pool, islands.IslandFilter{Limit: 500})
	if err != nil {
		p.fail(w, r, err)
		return
	}
	names := map[int64]string{}
	for _, i := range isls {
		names[i.ID] = i.Name
	}
	ops, err := islands.OperatorsByIsland(r.Context(), p.pool)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	pledges, err := islands.PledgeList(r.Context(), p.pool, islands.PledgeFilter{Live: true, Limit: 500})
	if err != nil {
		p.fail(w, r, err)
		return
	}
	rows := map[int64]*memberRow{}
	var data membersData
	for _, m := range ms {
		data.Members = append(data.Members, memberRow{Member: m})
	}
	for i := range data.Members {
		rows[data.Members[i].Member.ID] = &data.Members[i]
	}
	for _, i := range isls {
		for _, o := range ops[i.ID] {
			if row := rows[o.MemberID]; row != nil {
				row.Operates = append(row.Operates, names[i.ID])
			}
		}
	}
	for _, pl := range pledges {
		if row := rows[pl.MemberID]; row != nil {
			row.Pledges++
			row.Pledged += pl.CapacityBytes
			if pl.Status != islands.PledgeActive {
				row.NotActive++
			}
		}
	}
	p.render(w, r, http.StatusOK, "members", Page{Title: "Members", Nav: "members", Data: data})
}
