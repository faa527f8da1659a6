// What `meshform synth` tells the app it runs, in a file of its own: the CLI reads it without loading cdktf.

/**
 * Set by `meshform synth` for the app it runs: the output directory the project's cdktf.json names. The run's
 * `CDKTF_OUTDIR` is a staging directory beside it, which meshform swaps into place once synthesis succeeded.
 */
export const MESHFORM_OUTDIR_ENV = 'MESHFORM_OUTDIR';
