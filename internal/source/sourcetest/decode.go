package sourcetest

import (
	"image"
	"testing"

	"github.com/livesnap/livesnap/internal/decode"
	"github.com/livesnap/livesnap/internal/media"
)

// DecodeKeyframe decodes one keyframe on its own, as a snapshot would (package decode,
// source size, then JPEG), and returns the picture.
func DecodeKeyframe(t testing.TB, au media.AccessUnit) image.Image {
	t.Helper()
	if !au.Keyframe {
		t.Fatal("not a keyframe")
	}
	d, err := decode.New(au.Codec)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	p, err := d.Decode([]media.AccessUnit{au}, decode.Options{Quality: 95})
	if err != nil {
		t.Fatalf("keyframe does not decode on its own: %v", err)
	}
	return DecodeJPEG(t, p.JPEG)
}
