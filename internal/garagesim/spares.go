package garagesim

import (
	"context"
	"log/slog"
	"time"
)

// spareKeys is how many MinIO users (with their canned policy attached, granting
// nothing) the simulator keeps ready once keys are being created: CreateKey then makes
// no MinIO call at all, and the pool is refilled in the background.
const spareKeys = 3

// spare is a MinIO user made ahead of a CreateKey.
type spare struct{ id, secret string }

// takeSpare returns a ready MinIO user, or false when none is (CreateKey then creates
// one itself). The first call starts the filler. The caller holds s.mu.
func (s *Sim) takeSpare() (spare, bool) {
	if !s.sparesStarted && !s.sparesStopped {
		s.sparesStarted = true
		ctx, cancel := context.WithCancel(context.Background())
		s.sparesCancel = cancel
		go s.fillSpares(ctx)
	}
	select {
	case sp := <-s.spares:
		select {
		case s.sparesWanted <- struct{}{}:
		default:
		}
		return sp, true
	default:
		return spare{}, false
	}
}

// fillSpares keeps s.spares full until its context ends (Cleanup or Close).
func (s *Sim) fillSpares(ctx context.Context) {
	defer close(s.sparesDone)
	for {
		for len(s.spares) < cap(s.spares) {
			k := &simKey{id: "GK" + randomHex(12), secret: randomHex(32)}
			s.mu.Lock()
			err := s.minioCreateUser(ctx, k, true)
			s.mu.Unlock()
			if err != nil {
				if ctx.Err() != nil {
					s.removeSpare(context.WithoutCancel(ctx), spare{k.id, k.secret})
					return
				}
				s.log.Warn("garagesim: prepare a spare key", slog.String("error", err.Error()))
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Second):
				}
				continue
			}
			s.spares <- spare{k.id, k.secret}
		}
		select {
		case <-ctx.Done():
			return
		case <-s.sparesWanted:
		}
	}
}

// stopSpares stops the filler and removes the unused spares from MinIO.
func (s *Sim) stopSpares(ctx context.Context) {
	s.mu.Lock()
	started := s.sparesStarted
	s.sparesStopped = true
	s.mu.Unlock()
	if !started {
		return
	}
	s.sparesCancel()
	<-s.sparesDone
	for {
		select {
		case sp := <-s.spares:
			s.removeSpare(ctx, sp)
		default:
			return
		}
	}
}

func (s *Sim) removeSpare(ctx context.Context, sp spare) {
	if err := s.admin.RemoveUser(ctx, sp.id); err != nil {
		s.log.Warn("garagesim: remove a spare key", slog.String("key", sp.id), slog.String("error", err.Error()))
	}
	_ = s.admin.RemoveCannedPolicy(ctx, sp.id)
}
