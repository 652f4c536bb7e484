/* Driver for a `certquant export c` pair: runs NAME_predict on every image of an IDX3 file
 * (uncompressed, u8 pixels) and prints one line per image: the returned class (-1 on a tie),
 * then the integer logits.
 *
 *   cc -O2 -std=c99 -I DIR -DCQ_NAME=qnn -DCQ_UPPER=QNN driver.c DIR/qnn.c -o run
 *   ./run t10k-images-idx3-ubyte > logits.txt
 *
 * Used by scripts/issue17/compare.py and tests/export_int.rs. The exported code itself needs
 * nothing but <stdint.h>; this driver uses <stdio.h> to read the file and print.
 */
#include <stdio.h>
#include <stdint.h>

#define CQ_STR2(x) #x
#define CQ_STR(x) CQ_STR2(x)
#define CQ_CAT2(a, b) a##b
#define CQ_CAT(a, b) CQ_CAT2(a, b)

#include CQ_STR(CQ_NAME.h)

#define INPUTS CQ_CAT(CQ_UPPER, _INPUTS)
#define CLASSES CQ_CAT(CQ_UPPER, _CLASSES)
#define PREDICT CQ_CAT(CQ_NAME, _predict)
#define LOGIT_T CQ_CAT(CQ_NAME, _logit_t)

static unsigned long be32(const unsigned char *b)
{
    return ((unsigned long)b[0] << 24) | ((unsigned long)b[1] << 16) | ((unsigned long)b[2] << 8) |
           (unsigned long)b[3];
}

int main(int argc, char **argv)
{
    unsigned char head[16];
    uint8_t pixels[INPUTS];
    LOGIT_T logits[CLASSES];
    unsigned long n, rows, cols, i;
    FILE *f;
    int c, k;
    if (argc != 2) {
        fprintf(stderr, "usage: %s IMAGES.idx3\n", argv[0]);
        return 2;
    }
    f = fopen(argv[1], "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", argv[1]);
        return 2;
    }
    if (fread(head, 1, 16, f) != 16 || be32(head) != 0x803UL) {
        fprintf(stderr, "%s: not an uncompressed IDX3 u8 image file\n", argv[1]);
        return 2;
    }
    n = be32(head + 4);
    rows = be32(head + 8);
    cols = be32(head + 12);
    if (rows * cols != (unsigned long)INPUTS) {
        fprintf(stderr, "%s: images of %lux%lu pixels, the network takes %lu\n", argv[1], rows, cols,
                (unsigned long)INPUTS);
        return 2;
    }
    for (i = 0; i < n; ++i) {
        if (fread(pixels, 1, INPUTS, f) != (size_t)INPUTS) {
            fprintf(stderr, "%s: truncated at image %lu\n", argv[1], i);
            return 2;
        }
        c = PREDICT(pixels, logits);
        printf("%d", c);
        for (k = 0; k < CLASSES; ++k) printf(" %lld", (long long)logits[k]);
        printf("\n");
    }
    fclose(f);
    return 0;
}
