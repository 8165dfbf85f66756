package sqlite

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/livesnap/livesnap/internal/snapshot"
	"github.com/livesnap/livesnap/internal/store"
)

// likeEscape makes s a literal inside a LIKE pattern (escape character '\').
func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// UpdateTemplate implements store.Store.
func (s *DB) UpdateTemplate(ctx context.Context, t snapshot.Template) error {
	res, err := s.db.ExecContext(ctx, `UPDATE templates SET name = ?, time_interval = ?, overwrite_format = ?, sequence_format = ?,
		capture_policy = ?, width = ?, height = ?, quality = ?, modified_ms = ?
		WHERE account_id = ? AND id = ?`, t.Name, t.TimeInterval, t.OverwriteFormat, t.SequenceFormat,
		policyOrDefault(t.Image.Policy), t.Image.Width, t.Image.Height, t.Image.Quality, ms(t.LastModified), t.AccountID, t.ID)
	return affectedOne(res, err)
}

// DeleteTemplate implements store.Store.
func (s *DB) DeleteTemplate(ctx context.Context, accountID int64, id string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM templates WHERE account_id = ? AND id = ?`, accountID, id)
	return affectedOne(res, err)
}

func affectedOne(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return store.ErrNotFound
	}
	return nil
}

func orderBy(p store.Page) string {
	if p.Desc {
		return ` ORDER BY create_ms DESC, id DESC`
	}
	return ` ORDER BY create_ms ASC, id ASC`
}

// ListTemplates implements store.Store.
func (s *DB) ListTemplates(ctx context.Context, q store.TemplateQuery) ([]snapshot.Template, int64, error) {
	where := `account_id = ?`
	args := []any{q.AccountID}
	switch {
	case q.Keyword != "":
		where += ` AND (id = ? OR name LIKE ? ESCAPE '\')`
		args = append(args, q.Keyword, "%"+likeEscape(q.Keyword)+"%")
	case len(q.IDs) > 0:
		where += ` AND id IN (?` + strings.Repeat(`, ?`, len(q.IDs)-1) + `)`
		for _, id := range q.IDs {
			args = append(args, id)
		}
	}
	if q.Type != "" {
		where += ` AND type = ?`
		args = append(args, q.Type)
	}
	var total int64
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM templates WHERE `+where, args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, name, type, time_interval, overwrite_format, sequence_format, create_ms, modified_ms
		FROM templates WHERE `+where+orderBy(q.Page)+` LIMIT ? OFFSET ?`, append(args, q.Limit, q.Offset)...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []snapshot.Template
	for rows.Next() {
		t := snapshot.Template{AccountID: q.AccountID}
		var created, modified int64
		if err := rows.Scan(&t.ID, &t.Name, &t.Type, &t.TimeInterval, &t.OverwriteFormat, &t.SequenceFormat, &created, &modified); err != nil {
			return nil, 0, err
		}
		t.CreateTime, t.LastModified = fromMs(created), fromMs(modified)
		out = append(out, t)
	}
	return out, total, rows.Err()
}

// ListJobs implements store.Store.
func (s *DB) ListJobs(ctx context.Context, q store.JobQuery) ([]snapshot.Job, int64, error) {
	where := `account_id = ? AND create_ms BETWEEN ? AND ?`
	args := []any{q.AccountID, ms(q.Start), ms(q.End)}
	if q.Keyword != "" {
		where += ` AND (id = ? OR name LIKE ? ESCAPE '\')`
		args = append(args, q.Keyword, "%"+likeEscape(q.Keyword)+"%")
	}
	if q.Status != "" {
		where += ` AND status = ?`
		args = append(args, q.Status)
	}
	var total int64
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM jobs WHERE `+where, args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+jobColumns+` FROM jobs WHERE `+where+orderBy(q.Page)+` LIMIT ? OFFSET ?`, append(args, q.Limit, q.Offset)...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []snapshot.Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, j)
	}
	return out, total, rows.Err()
}

// DeleteFiles implements store.Store.
func (s *DB) DeleteFiles(ctx context.Context, accountID int64, jobID string, at []time.Time) ([]snapshot.File, bool, error) {
	var deleted []snapshot.File
	overlay := false
	err := s.tx(ctx, func(tx *sql.Tx) error {
		for _, t := range at {
			rows, err := tx.QueryContext(ctx, `DELETE FROM files WHERE account_id = ? AND job_id = ? AND create_ms = ? AND is_overlay = 0
				RETURNING endpoint, bucket, object, create_ms`, accountID, jobID, ms(t))
			if err != nil {
				return err
			}
			n := 0
			for rows.Next() {
				f := snapshot.File{AccountID: accountID, JobID: jobID}
				var created int64
				if err := rows.Scan(&f.Endpoint, &f.Bucket, &f.Object, &created); err != nil {
					rows.Close()
					return err
				}
				f.CreateTime = fromMs(created)
				deleted = append(deleted, f)
				n++
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			if n == 0 {
				var c int
				if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM files WHERE account_id = ? AND job_id = ? AND create_ms = ? AND is_overlay = 1`,
					accountID, jobID, ms(t)).Scan(&c); err != nil {
					return err
				}
				overlay = overlay || c > 0
			}
		}
		return nil
	})
	return deleted, overlay, err
}
