package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"time"

	"github.com/livesnap/livesnap/internal/snapshot"
	"github.com/livesnap/livesnap/internal/store"
)

// Bounds on what lease callers pass in.
const (
	maxHolderID   = 128
	maxNodeName   = 255
	maxClaimBatch = 1000 // jobs per ClaimJobs call
	maxIDsPerStmt = 500  // job ids in one IN (...) list
	maxDeadPerHB  = 100  // dead holders dropped per Heartbeat
	maxLeaseTTL   = 24 * time.Hour
)

func checkHolder(id string) error {
	if id == "" || len(id) > maxHolderID {
		return fmt.Errorf("lease holder id must be 1 to %d bytes", maxHolderID)
	}
	return nil
}

func checkTTL(ttl time.Duration) error {
	if ttl <= 0 || ttl > maxLeaseTTL {
		return fmt.Errorf("lease ttl %v: want more than 0 and at most %v", ttl, maxLeaseTTL)
	}
	return nil
}

// Heartbeat implements store.Leases.
func (s *DB) Heartbeat(ctx context.Context, h store.Holder, now time.Time, ttl time.Duration) (store.LeaseStats, error) {
	if err := checkHolder(h.ID); err != nil {
		return store.LeaseStats{}, err
	}
	if err := checkTTL(ttl); err != nil {
		return store.LeaseStats{}, err
	}
	if len(h.Node) > maxNodeName {
		return store.LeaseStats{}, fmt.Errorf("lease holder node name longer than %d bytes", maxNodeName)
	}
	var stats store.LeaseStats
	err := s.tx(ctx, func(tx conn) error {
		stats = store.LeaseStats{}
		if _, err := tx.Exec(ctx, `INSERT INTO lease_holders (id, node, pid, heartbeat_ms) VALUES (?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET node = excluded.node, pid = excluded.pid, heartbeat_ms = excluded.heartbeat_ms`,
			h.ID, h.Node, h.PID, ms(now)); err != nil {
			return err
		}
		// Holders, and then their leases, go in that order (as in ReleaseHolder); a bounded
		// batch per call, the rest on later heartbeats (they are not listed as live meanwhile).
		rows, err := tx.Query(ctx, `DELETE FROM lease_holders WHERE id IN
			(SELECT id FROM lease_holders WHERE heartbeat_ms < ? ORDER BY id LIMIT ?`+s.d.SkipLocked+`) RETURNING id`, ms(now.Add(-ttl)), maxDeadPerHB)
		if err != nil {
			return err
		}
		dead, err := scanStrings(rows)
		if err != nil {
			return err
		}
		if err := dropLeases(ctx, tx, `lease_holder`, dead, ""); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `SELECT h.id, h.node, h.pid, h.heartbeat_ms,
				(SELECT count(*) FROM jobs j WHERE j.lease_holder = h.id AND j.status = ? AND j.lease_expires_ms > ?)
			FROM lease_holders h WHERE h.heartbeat_ms >= ? ORDER BY h.id`, snapshot.StatusStarted, ms(now), ms(now.Add(-ttl)))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var hh store.Holder
			var beat int64
			if err := rows.Scan(&hh.ID, &hh.Node, &hh.PID, &beat, &hh.Leases); err != nil {
				return err
			}
			hh.Heartbeat = fromMs(beat)
			stats.Holders = append(stats.Holders, hh)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT count(*) FROM jobs WHERE status = ?`, snapshot.StatusStarted).Scan(&stats.StartedJobs)
	})
	return stats, s.wrap("heartbeat", err)
}

// dropLeases clears the leases of the jobs whose column (lease_holder or id) is one of values,
// and with holder set only those holder holds. The fencing tokens stay, so the next claim
// still gets a bigger one.
func dropLeases(ctx context.Context, tx conn, column string, values []string, holder string) error {
	for len(values) > 0 {
		n := min(len(values), maxIDsPerStmt)
		q := `UPDATE jobs SET lease_holder = '', lease_expires_ms = 0 WHERE ` + column + ` IN (` + placeholders(n) + `)`
		args := make([]any, 0, n+1)
		for _, v := range values[:n] {
			args = append(args, v)
		}
		if holder != "" {
			q += ` AND lease_holder = ?`
			args = append(args, holder)
		}
		if _, err := tx.Exec(ctx, q, args...); err != nil {
			return err
		}
		values = values[n:]
	}
	return nil
}

// ClaimJobs implements store.Leases.
func (s *DB) ClaimJobs(ctx context.Context, holderID string, now time.Time, ttl time.Duration, max int) ([]store.Lease, error) {
	if err := checkHolder(holderID); err != nil {
		return nil, err
	}
	if err := checkTTL(ttl); err != nil {
		return nil, err
	}
	if max <= 0 {
		return nil, nil
	}
	max = min(max, maxClaimBatch)
	var out []store.Lease
	err := s.tx(ctx, func(tx conn) error {
		out = nil
		rows, err := tx.Query(ctx, `SELECT id FROM jobs WHERE status = ? AND (lease_holder = '' OR lease_expires_ms <= ?)
			ORDER BY modified_ms, id LIMIT ?`+s.d.SkipLocked, snapshot.StatusStarted, ms(now), max)
		if err != nil {
			return err
		}
		ids, err := scanStrings(rows)
		if err != nil || len(ids) == 0 {
			return err
		}
		args := []any{holderID, ms(now.Add(ttl))}
		for _, id := range ids {
			args = append(args, id)
		}
		rows, err = tx.Query(ctx, `UPDATE jobs SET lease_holder = ?, lease_expires_ms = ?, lease_token = lease_token + 1
			WHERE id IN (`+placeholders(len(ids))+`) RETURNING `+jobColumns+`, lease_token, lease_expires_ms`, args...)
		if err != nil {
			return err
		}
		out, err = scanLeases(rows)
		return err
	})
	// Oldest started first, as they were chosen.
	sort.Slice(out, func(i, k int) bool {
		a, b := out[i].Job, out[k].Job
		return a.LastModified.Before(b.LastModified) || a.LastModified.Equal(b.LastModified) && a.ID < b.ID
	})
	return out, s.wrap("claim jobs", err)
}

func scanLeases(rows *sql.Rows) ([]store.Lease, error) {
	defer rows.Close()
	var out []store.Lease
	for rows.Next() {
		var l store.Lease
		var expires int64
		j, err := scanJob(leaseScanner{rows, &l.Token, &expires})
		if err != nil {
			return nil, err
		}
		l.Job, l.Expires = j, fromMs(expires)
		out = append(out, l)
	}
	return out, rows.Err()
}

// leaseScanner scans a job row followed by its lease token and expiry.
type leaseScanner struct {
	rows    *sql.Rows
	token   *int64
	expires *int64
}

func (l leaseScanner) Scan(dest ...any) error {
	return l.rows.Scan(append(dest, l.token, l.expires)...)
}

// RenewLeases implements store.Leases.
func (s *DB) RenewLeases(ctx context.Context, holderID string, now time.Time, ttl time.Duration) ([]store.Lease, error) {
	if err := checkHolder(holderID); err != nil {
		return nil, err
	}
	if err := checkTTL(ttl); err != nil {
		return nil, err
	}
	var out []store.Lease
	err := s.tx(ctx, func(tx conn) error {
		// Leases of stopped jobs, and the holder's expired ones, are gone for good.
		if _, err := tx.Exec(ctx, `UPDATE jobs SET lease_holder = '', lease_expires_ms = 0
			WHERE lease_holder = ? AND (status <> ? OR lease_expires_ms <= ?)`, holderID, snapshot.StatusStarted, ms(now)); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `UPDATE jobs SET lease_expires_ms = ? WHERE lease_holder = ?
			RETURNING `+jobColumns+`, lease_token, lease_expires_ms`, ms(now.Add(ttl)), holderID)
		if err != nil {
			return err
		}
		out, err = scanLeases(rows)
		return err
	})
	sort.Slice(out, func(i, k int) bool { return out[i].Job.ID < out[k].Job.ID })
	return out, s.wrap("renew leases", err)
}

// ReleaseLeases implements store.Leases.
func (s *DB) ReleaseLeases(ctx context.Context, holderID string, jobIDs []string) error {
	if err := checkHolder(holderID); err != nil {
		return err
	}
	if len(jobIDs) == 0 {
		return nil
	}
	return s.wrap("release leases", s.tx(ctx, func(tx conn) error { return dropLeases(ctx, tx, `id`, jobIDs, holderID) }))
}

// ReleaseHolder implements store.Leases.
func (s *DB) ReleaseHolder(ctx context.Context, holderID string) error {
	if err := checkHolder(holderID); err != nil {
		return err
	}
	err := s.tx(ctx, func(tx conn) error {
		if _, err := tx.Exec(ctx, `DELETE FROM lease_holders WHERE id = ?`, holderID); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE jobs SET lease_holder = '', lease_expires_ms = 0 WHERE lease_holder = ?`, holderID)
		return err
	})
	return s.wrap("release holder", err)
}

// JobsVersion implements store.Leases.
func (s *DB) JobsVersion(ctx context.Context) (int64, error) {
	var v int64
	err := s.db.QueryRow(ctx, `SELECT version FROM jobs_version WHERE id = 1`).Scan(&v)
	return v, s.wrap("jobs version", err)
}
