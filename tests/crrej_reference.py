"""A literal, loop-by-loop Python port of hstcal cs2 crrej_init/crrej_loop/crrej_do.

Deliberately slow and unvectorised: it is the semantic reference against which the
vectorised kernel is checked on tiny stacks (tests/test_crreject_reference.py).
"""

import numpy as np

OK, HIT, SPILL, EXCLUDE = 0, 8, 2, 4


def reference_crreject(stack, dq, efac, noise, gain, sky, sigmas, rej, psigma, initial,
                       scale_pct=0.0, badbits=0, crflag=8192, fillval=0.0):
    n, ny, nx = stack.shape
    scale = scale_pct / 100.0
    ave = np.zeros((ny, nx))
    avevar = np.zeros((ny, nx))
    # crrej_init
    if initial == "median":
        for j in range(ny):
            for i in range(nx):
                work = sorted((stack[k, j, i] - sky[k]) / efac[k] for k in range(n))
                ave[j, i] = (work[n // 2 - 1] + work[n // 2]) / 2 if n % 2 == 0 else work[n // 2]
    else:
        for j in range(ny):
            for k in range(n):
                for i in range(nx):
                    raw = stack[k, j, i]
                    raw0 = max(raw, 0.0)
                    signal0 = max(raw - sky[k], 0.0)
                    val = (raw - sky[k]) / efac[k]
                    var = (noise[k] ** 2 + raw0 / gain[k] + (scale * signal0) ** 2) / efac[k] ** 2
                    if k == 0 or val < ave[j, i]:
                        ave[j, i] = val
                        avevar[j, i] = var
    # crrej_loop
    rej2 = rej * rej
    psig2 = psigma * psigma if psigma > 0 else -1.0
    width = int(rej + 1e-5)
    out_dq = np.full((ny, nx), crflag, dtype=np.int64)
    masks = np.zeros((n, ny, nx), bool)
    sumvar = np.zeros((ny, nx))
    efacsum = np.zeros((ny, nx))
    niter = len(sigmas)
    for it in range(niter):
        sig2 = sigmas[it] ** 2
        total = np.zeros((ny, nx))
        efacsum[:] = 0
        for k in range(n):
            rog2 = noise[k] ** 2
            exp2 = efac[k] ** 2
            mask = np.full((ny, nx), OK)
            thresh = np.zeros((ny, nx))
            spthresh = np.zeros((ny, nx))
            for j in range(ny):
                for i in range(nx):
                    if initial == "minimum" and it == 0:
                        thresh[j, i] = sig2 * avevar[j, i]
                        spthresh[j, i] = sig2 * avevar[j, i]
                    else:
                        dum = ave[j, i] * efac[k] + sky[k]
                        val = max(dum, 0.0)
                        pixsky = max(dum - sky[k], 0.0)
                        thresh[j, i] = sig2 * (rog2 + val / gain[k] + (scale * pixsky) ** 2) / exp2
                        spthresh[j, i] = sig2 * (rog2 + val / gain[k]) / exp2
            pic = np.zeros((ny, nx))
            for j in range(ny):
                for i in range(nx):
                    if dq[k, j, i] & badbits:
                        mask[j, i] = EXCLUDE
                    pic[j, i] = (stack[k, j, i] - sky[k]) / efac[k]
            for j in range(ny):
                for i in range(nx):
                    if (pic[j, i] - ave[j, i]) ** 2 > thresh[j, i] and mask[j, i] != EXCLUDE:
                        mask[j, i] = HIT
                        for jj in range(j - width, j + width + 1):
                            if jj >= ny or jj < 0:
                                continue
                            j2 = (jj - j) ** 2
                            for ii in range(i - width, i + width + 1):
                                if (ii - i) ** 2 + j2 > rej2:
                                    continue
                                if ii >= nx or ii < 0:
                                    continue
                                if (pic[jj, ii] - ave[jj, ii]) ** 2 <= psig2 * spthresh[jj, ii]:
                                    continue
                                if mask[jj, ii] != HIT:
                                    mask[jj, ii] = SPILL
            for j in range(ny):
                for i in range(nx):
                    if mask[j, i] == OK:
                        total[j, i] += pic[j, i] * efac[k]
                        efacsum[j, i] += efac[k]
                        if it == niter - 1:
                            val = max(pic[j, i] * efac[k] + sky[k], 0.0)
                            sumvar[j, i] += rog2 + val / gain[k] + (scale * val) ** 2
            if it == niter - 1:
                for j in range(ny):
                    for i in range(nx):
                        sval = out_dq[j, i] | (int(dq[k, j, i]) & ~crflag)
                        if mask[j, i] in (HIT, SPILL):
                            masks[k, j, i] = True
                        else:
                            sval &= ~crflag
                        out_dq[j, i] = sval
        for j in range(ny):
            for i in range(nx):
                if efacsum[j, i] > 0:
                    ave[j, i] = total[j, i] / efacsum[j, i]
                elif it == niter - 1:
                    ave[j, i] = fillval
    err = np.where(efacsum > 0, np.sqrt(sumvar) / np.where(efacsum > 0, efacsum, 1), fillval)
    texpt = float(np.sum(efac))
    return ave * texpt + float(np.sum(sky)), err * texpt, out_dq, masks
