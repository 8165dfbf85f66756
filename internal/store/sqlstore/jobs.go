package sqlstore

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/livesnap/livesnap/internal/snapshot"
	"github.com/livesnap/livesnap/internal/store"
)

// CreateTemplate implements store.Store.
func (s *DB) CreateTemplate(ctx context.Context, t snapshot.Template) error {
	_, err := s.db.Exec(ctx, `INSERT INTO templates (id, account_id, name, type, time_interval, overwrite_format, sequence_format,
		capture_policy, width, height, quality, create_ms, modified_ms)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.ID, t.AccountID, t.Name, t.Type, t.TimeInterval, t.OverwriteFormat, t.SequenceFormat,
		policyOrDefault(t.Image.Policy), t.Image.Width, t.Image.Height, t.Image.Quality, ms(t.CreateTime), ms(t.LastModified))
	return s.wrap("create template", err)
}

// GetTemplate implements store.Store.
func (s *DB) GetTemplate(ctx context.Context, accountID int64, id string) (snapshot.Template, error) {
	t := snapshot.Template{AccountID: accountID, ID: id}
	var created, modified int64
	err := s.db.QueryRow(ctx, `SELECT name, type, time_interval, overwrite_format, sequence_format,
		capture_policy, width, height, quality, create_ms, modified_ms
		FROM templates WHERE account_id = ? AND id = ?`, accountID, id).
		Scan(&t.Name, &t.Type, &t.TimeInterval, &t.OverwriteFormat, &t.SequenceFormat,
			&t.Image.Policy, &t.Image.Width, &t.Image.Height, &t.Image.Quality, &created, &modified)
	t.CreateTime, t.LastModified = fromMs(created), fromMs(modified)
	return t, s.wrap("get template", notFound(err))
}

// UpdateTemplate implements store.Store.
func (s *DB) UpdateTemplate(ctx context.Context, t snapshot.Template) error {
	res, err := s.db.Exec(ctx, `UPDATE templates SET name = ?, time_interval = ?, overwrite_format = ?, sequence_format = ?,
		capture_policy = ?, width = ?, height = ?, quality = ?, modified_ms = ?
		WHERE account_id = ? AND id = ?`, t.Name, t.TimeInterval, t.OverwriteFormat, t.SequenceFormat,
		policyOrDefault(t.Image.Policy), t.Image.Width, t.Image.Height, t.Image.Quality, ms(t.LastModified), t.AccountID, t.ID)
	return s.wrap("update template", affectedOne(res, err))
}

// DeleteTemplate implements store.Store.
func (s *DB) DeleteTemplate(ctx context.Context, accountID int64, id string) error {
	res, err := s.db.Exec(ctx, `DELETE FROM templates WHERE account_id = ? AND id = ?`, accountID, id)
	return s.wrap("delete template", affectedOne(res, err))
}

// likeEscape makes s a literal inside a LIKE pattern (escape character '\').
func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
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
		where += ` AND (id = ? OR name ` + s.d.Like + ` ? ESCAPE '\')`
		args = append(args, q.Keyword, "%"+likeEscape(q.Keyword)+"%")
	case len(q.IDs) > 0:
		where += ` AND id IN (` + placeholders(len(q.IDs)) + `)`
		for _, id := range q.IDs {
			args = append(args, id)
		}
	}
	if q.Type != "" {
		where += ` AND type = ?`
		args = append(args, q.Type)
	}
	var total int64
	if err := s.db.QueryRow(ctx, `SELECT count(*) FROM templates WHERE `+where, args...).Scan(&total); err != nil {
		return nil, 0, s.wrap("list templates", err)
	}
	rows, err := s.db.Query(ctx, `SELECT id, name, type, time_interval, overwrite_format, sequence_format, create_ms, modified_ms
		FROM templates WHERE `+where+orderBy(q.Page)+` LIMIT ? OFFSET ?`, append(args, q.Limit, q.Offset)...)
	if err != nil {
		return nil, 0, s.wrap("list templates", err)
	}
	defer rows.Close()
	var out []snapshot.Template
	for rows.Next() {
		t := snapshot.Template{AccountID: q.AccountID}
		var created, modified int64
		if err := rows.Scan(&t.ID, &t.Name, &t.Type, &t.TimeInterval, &t.OverwriteFormat, &t.SequenceFormat, &created, &modified); err != nil {
			return nil, 0, s.wrap("list templates", err)
		}
		t.CreateTime, t.LastModified = fromMs(created), fromMs(modified)
		out = append(out, t)
	}
	return out, total, s.wrap("list templates", rows.Err())
}

const jobColumns = `account_id, id, name, template_id, template_name, time_interval, overwrite_format, sequence_format,
	status, input_type, input_url, output_type, output_endpoint, output_bucket, callback_url, create_ms, modified_ms, generation,
	capture_policy, width, height, quality, input_transport`

type scanner interface{ Scan(...any) error }

func scanJob(row scanner) (snapshot.Job, error) {
	var j snapshot.Job
	var created, modified int64
	err := row.Scan(&j.AccountID, &j.ID, &j.Name, &j.TemplateID, &j.TemplateName, &j.TimeInterval, &j.OverwriteFormat, &j.SequenceFormat,
		&j.Status, &j.Input.Type, &j.Input.URL, &j.Output.StorageType, &j.Output.Endpoint, &j.Output.Bucket, &j.CallbackURL,
		&created, &modified, &j.Generation, &j.Image.Policy, &j.Image.Width, &j.Image.Height, &j.Image.Quality, &j.Input.Transport)
	j.CreateTime, j.LastModified = fromMs(created), fromMs(modified)
	return j, err
}

func scanJobs(rows *sql.Rows) ([]snapshot.Job, error) {
	defer rows.Close()
	var jobs []snapshot.Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, err
		}
		jobs = append(jobs, j)
	}
	return jobs, rows.Err()
}

// CreateJob implements store.Store.
func (s *DB) CreateJob(ctx context.Context, j snapshot.Job) error {
	err := s.tx(ctx, func(c conn) error {
		_, err := c.Exec(ctx, `INSERT INTO jobs (`+jobColumns+`) VALUES (`+placeholders(23)+`)`,
			j.AccountID, j.ID, j.Name, j.TemplateID, j.TemplateName, j.TimeInterval, j.OverwriteFormat, j.SequenceFormat,
			j.Status, j.Input.Type, j.Input.URL, j.Output.StorageType, j.Output.Endpoint, j.Output.Bucket, j.CallbackURL,
			ms(j.CreateTime), ms(j.LastModified), j.Generation,
			policyOrDefault(j.Image.Policy), j.Image.Width, j.Image.Height, j.Image.Quality, j.Input.Transport)
		if err != nil {
			return err
		}
		return bumpJobsVersion(ctx, c)
	})
	return s.wrap("create job", err)
}

// bumpJobsVersion makes store.Leases.JobsVersion grow, in the transaction of the change. The
// counter row is the last lock such a transaction takes.
func bumpJobsVersion(ctx context.Context, c conn) error {
	_, err := c.Exec(ctx, `UPDATE jobs_version SET version = version + 1 WHERE id = 1`)
	return err
}

// GetJob implements store.Store.
func (s *DB) GetJob(ctx context.Context, accountID int64, id string) (snapshot.Job, error) {
	j, err := scanJob(s.db.QueryRow(ctx, `SELECT `+jobColumns+` FROM jobs WHERE account_id = ? AND id = ?`, accountID, id))
	return j, s.wrap("get job", notFound(err))
}

// SetJobStatus implements store.Store. Locks are taken in the order account, job, jobs
// version, and the account row serializes the limit check of concurrent starts.
func (s *DB) SetJobStatus(ctx context.Context, accountID int64, id, from, to string, newGeneration bool, limit int, now time.Time) (snapshot.Job, error) {
	var out snapshot.Job
	err := s.tx(ctx, func(c conn) error {
		checkLimit := limit > 0 && to == snapshot.StatusStarted
		if checkLimit {
			var one int
			if err := c.QueryRow(ctx, `SELECT 1 FROM accounts WHERE id = ?`+s.d.ForUpdate, accountID).Scan(&one); err != nil {
				return notFound(err)
			}
		}
		j, err := scanJob(c.QueryRow(ctx, `SELECT `+jobColumns+` FROM jobs WHERE account_id = ? AND id = ?`+s.d.ForUpdate, accountID, id))
		if err != nil {
			return notFound(err)
		}
		if j.Status != from {
			return store.ErrConflict
		}
		if checkLimit {
			var running int
			if err := c.QueryRow(ctx, `SELECT count(*) FROM jobs WHERE account_id = ? AND status = ? AND id <> ?`,
				accountID, snapshot.StatusStarted, id).Scan(&running); err != nil {
				return err
			}
			if running >= limit {
				return store.ErrLimitExceeded
			}
		}
		gen := j.Generation
		if newGeneration {
			gen++
		}
		update := `UPDATE jobs SET status = ?, generation = ?, modified_ms = ? WHERE id = ?`
		if to != snapshot.StatusStarted {
			// A job that is not started is never held; its next start is claimed afresh.
			update = `UPDATE jobs SET status = ?, generation = ?, modified_ms = ?, lease_holder = '', lease_expires_ms = 0 WHERE id = ?`
		}
		if _, err := c.Exec(ctx, update, to, gen, ms(now), id); err != nil {
			return err
		}
		if to != from || gen != j.Generation {
			if err := bumpJobsVersion(ctx, c); err != nil {
				return err
			}
		}
		j.Status, j.Generation, j.LastModified = to, gen, now.UTC().Truncate(time.Millisecond)
		out = j
		return nil
	})
	return out, s.wrap("set job status", err)
}

// ListJobs implements store.Store.
func (s *DB) ListJobs(ctx context.Context, q store.JobQuery) ([]snapshot.Job, int64, error) {
	where := `account_id = ? AND create_ms BETWEEN ? AND ?`
	args := []any{q.AccountID, ms(q.Start), ms(q.End)}
	if q.Keyword != "" {
		where += ` AND (id = ? OR name ` + s.d.Like + ` ? ESCAPE '\')`
		args = append(args, q.Keyword, "%"+likeEscape(q.Keyword)+"%")
	}
	if q.Status != "" {
		where += ` AND status = ?`
		args = append(args, q.Status)
	}
	var total int64
	if err := s.db.QueryRow(ctx, `SELECT count(*) FROM jobs WHERE `+where, args...).Scan(&total); err != nil {
		return nil, 0, s.wrap("list jobs", err)
	}
	rows, err := s.db.Query(ctx, `SELECT `+jobColumns+` FROM jobs WHERE `+where+orderBy(q.Page)+` LIMIT ? OFFSET ?`, append(args, q.Limit, q.Offset)...)
	if err != nil {
		return nil, 0, s.wrap("list jobs", err)
	}
	jobs, err := scanJobs(rows)
	return jobs, total, s.wrap("list jobs", err)
}

// NextSequence implements store.Store.
func (s *DB) NextSequence(ctx context.Context, jobID string) (int64, error) {
	var seq int64
	err := s.db.QueryRow(ctx, `UPDATE jobs SET last_sequence = last_sequence + 1 WHERE id = ? RETURNING last_sequence`, jobID).Scan(&seq)
	return seq, s.wrap("next sequence", notFound(err))
}
