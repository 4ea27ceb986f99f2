package crmstore

// SetMergeMinRows lets tests reach the merged read of dense batches with
// small data sets; it returns a func restoring the old value.
func SetMergeMinRows(n int) func() {
	old := mergeMinRows
	mergeMinRows = n
	return func() { mergeMinRows = old }
}
