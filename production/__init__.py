"""Card production controller: jobs, the encode -> verify -> print -> QC pipeline, stock."""
