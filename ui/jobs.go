package ui

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/pimbridge/pimbridge/offline"
)

// job is a go-offline or go-online started from the page, with its
// progress; the offline page shows the last one.
type job struct {
	Kind     string // "go-offline" or "go-online"
	Started  time.Time
	Finished time.Time // zero while it runs
	Err      string
	Outcome  string // a line when it finished

	// go-offline: rows of the run, from the engine's progress.
	Progress offline.Progress
	Batches  int
	// go-online: the queue at the start and now.
	QueueStart, QueueNow int64
}

// jobView is a job with its figures worked out for the page.
type jobView struct {
	job
	Running bool
	Percent int
	Done    int64
	Total   int64
	Rate    string // rows/s
	ETA     string
}

func (j job) view(now time.Time) jobView {
	v := jobView{job: j, Running: j.Finished.IsZero()}
	end := now
	if !v.Running {
		end = j.Finished
	}
	switch j.Kind {
	case "go-offline":
		v.Done, v.Total = j.Progress.Done, j.Progress.Total
	default:
		v.Done, v.Total = j.QueueStart-j.QueueNow, j.QueueStart
	}
	if v.Total > 0 {
		v.Percent = int(v.Done * 100 / v.Total)
	}
	if !v.Running && j.Err == "" {
		v.Percent = 100
	}
	if el := end.Sub(j.Started).Seconds(); el > 0 && v.Done > 0 {
		rate := float64(v.Done) / el
		v.Rate = fmt.Sprintf("%.0f", rate)
		if v.Running && v.Total > v.Done {
			v.ETA = (time.Duration(float64(v.Total-v.Done)/rate) * time.Second).Round(time.Second).String()
		}
	}
	return v
}

// offlineData is the offline page.
type offlineData struct {
	Status   Status
	Job      *jobView
	Rejected []offline.Rejection
}

func (s *Server) offlinePage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	st, err := s.b.Status(ctx)
	if err != nil {
		s.fail(w, r, "offline", err)
		return
	}
	d := offlineData{Status: st}
	if d.Rejected, err = s.b.OfflineErrors(ctx); err != nil {
		s.fail(w, r, "offline", err)
		return
	}
	s.mu.Lock()
	if s.job != nil {
		v := s.job.view(time.Now())
		d.Job = &v
	}
	s.mu.Unlock()
	s.render(w, r, http.StatusOK, "offline", page{Title: "Offline", Nav: "offline", Live: true, Data: d})
}

// offlineAction starts go-offline or go-online (with the rejected writes'
// choice), or stays offline. Jobs run under ctx (the server's).
func (s *Server) offlineAction(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	op := r.PathValue("op")
	switch op {
	case "stay":
		redirectMsg(w, r, "/offline", messages["stay"])
		return
	case "go-offline", "go-online":
	default:
		http.NotFound(w, r)
		return
	}
	onError := offline.StayOffline
	if op == "go-online" {
		if v := r.PostFormValue("on_error"); v != "" {
			d, err := offline.ParseOnError(v)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			onError = d
		}
		if onError == offline.Discard && r.PostFormValue("confirm") != "yes" {
			s.render(w, r, http.StatusOK, "confirm", page{Title: "Discard?", Nav: "offline", Data: confirm{
				Action: r.URL.Path, Question: "Discard the rejected writes? The changes you made offline that the server refused are dropped; the records get the server's version back.",
				Button: "Discard them and go online", Back: "/offline", Fields: map[string]string{"on_error": string(offline.Discard)}}})
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.job != nil && s.job.Finished.IsZero() {
		http.Redirect(w, r, "/offline?msg=job-running", http.StatusSeeOther)
		return
	}
	j := &job{Kind: op, Started: time.Now()}
	s.job = j
	go s.runJob(ctx, j, onError) // ends when the run does; ctx ends it early
	http.Redirect(w, r, "/offline?msg=job-started", http.StatusSeeOther)
}

// runJob runs j and records its progress and outcome under s.mu.
func (s *Server) runJob(ctx context.Context, j *job, onError offline.OnError) {
	var outcome string
	var err error
	if j.Kind == "go-offline" {
		var rep offline.Report
		rep, err = s.b.GoOffline(ctx, func(p offline.Progress) {
			s.mu.Lock()
			j.Progress = p
			j.Batches++
			s.mu.Unlock()
		})
		outcome = fmt.Sprintf("Offline: %d rows in %d batches in %s.", rep.Rows, rep.Batches, rep.Duration.Round(time.Millisecond))
	} else {
		q, qerr := s.b.QueueLength(ctx)
		s.mu.Lock()
		j.QueueStart, j.QueueNow = q, q
		s.mu.Unlock()
		jctx, stop := context.WithCancel(ctx)
		go func() { // ends with jctx
			t := time.NewTicker(200 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-jctx.Done():
					return
				case <-t.C:
				}
				if n, err := s.b.QueueLength(jctx); err == nil {
					s.mu.Lock()
					j.QueueNow = min(n, j.QueueStart)
					s.mu.Unlock()
				}
			}
		}()
		var rep offline.ReplayReport
		rep, err = s.b.GoOnline(ctx, onError)
		stop()
		err = errors.Join(qerr, err)
		outcome = fmt.Sprintf("Replayed %d, rejected %d.", rep.Replayed, rep.Rejected)
		if errors.Is(err, offline.ErrSyncErrors) {
			outcome += " The server rejected some writes: choose below what to do with them."
		} else if err == nil {
			outcome += " Online."
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	j.Finished, j.Outcome = time.Now(), outcome
	if err != nil {
		j.Err = err.Error()
		s.log.Warn("ui: "+j.Kind+" failed", "err", err)
	} else if j.Kind == "go-online" {
		j.QueueNow = 0
	}
}
