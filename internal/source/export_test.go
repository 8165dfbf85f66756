package source

// ReadsDirectly reports whether an RTMP stream reads its connection with the package's own
// chunk parser (the direct path) rather than through gortmplib's reader.
func ReadsDirectly(st Stream) bool {
	s, ok := st.(*rtmpStream)
	return ok && s.direct != nil
}
