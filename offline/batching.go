package offline

import "time"

// BatchSettings are the dynamic batching parameters (docs/offline.md)
// (the [offline] table of the config). Zero fields take the seed's
// defaults: 100000 rows, 10 s, 60 s, 2, 2, 3.
type BatchSettings struct {
	RowsBatchSize int
	MinBatchTime  time.Duration
	MaxBatchTime  time.Duration
	IncreaseRate  float64
	DecreaseRate  float64
	MaxRetryCount int // 0: the default 3; negative: no retries
}

func (s BatchSettings) withDefaults() BatchSettings {
	if s.RowsBatchSize <= 0 {
		s.RowsBatchSize = 100000
	}
	if s.MinBatchTime <= 0 {
		s.MinBatchTime = 10 * time.Second
	}
	if s.MaxBatchTime <= 0 {
		s.MaxBatchTime = 60 * time.Second
	}
	if s.IncreaseRate < 1 {
		s.IncreaseRate = 2
	}
	if s.DecreaseRate < 1 {
		s.DecreaseRate = 2
	}
	if s.MaxRetryCount == 0 {
		s.MaxRetryCount = 3
	}
	return s
}

// Sizer computes the size of each batch of one entity: the first is
// min(count, RowsBatchSize); a batch that took less than MinBatchTime
// multiplies the next size by IncreaseRate, one that took more than
// MaxBatchTime divides it by DecreaseRate (never below one row). The size
// never passes the largest batch the server serves (Limit).
type Sizer struct {
	set   BatchSettings
	size  int
	limit int // 0: no limit known
}

// NewSizer starts sizing for an entity with count pending rows.
func NewSizer(set BatchSettings, count int64) *Sizer {
	set = set.withDefaults()
	size := set.RowsBatchSize
	if count > 0 && count < int64(size) {
		size = int(count)
	}
	return &Sizer{set: set, size: max(size, 1)}
}

// Size is the size to ask for next.
func (s *Sizer) Size() int { return s.size }

// Limit caps every later size at n rows (the server's largest batch); n <=
// 0 is ignored.
func (s *Sizer) Limit(n int) {
	if n <= 0 {
		return
	}
	if s.limit == 0 || n < s.limit {
		s.limit = n
	}
	s.size = min(s.size, s.limit)
}

// Refused handles a batch the server refused as too large: the limit
// becomes half the refused size, and it reports false when one row was
// already refused (nothing smaller to try).
func (s *Sizer) Refused() bool {
	if s.size <= 1 {
		return false
	}
	s.Limit(s.size / 2)
	return true
}

// Observe adjusts the size after a batch that took d.
func (s *Sizer) Observe(d time.Duration) {
	switch {
	case d < s.set.MinBatchTime:
		next := float64(s.size) * s.set.IncreaseRate
		if next > 1<<30 {
			next = 1 << 30
		}
		s.size = int(next)
		if s.limit > 0 {
			s.size = min(s.size, s.limit)
		}
	case d > s.set.MaxBatchTime:
		s.size = max(int(float64(s.size)/s.set.DecreaseRate), 1)
	}
}
