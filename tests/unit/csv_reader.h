/* A strict RFC 4180 reader for the tests of the CSV writers (audit export,
 * eval report): cmocka assertions inside, included by the test files. */
#ifndef OB_TEST_CSV_READER_H
#define OB_TEST_CSV_READER_H

/* The fields of one record into fields[0..max), *p advanced past its CRLF;
 * returns their number. Fails the test on anything RFC 4180 does not
 * allow (a quote inside an unquoted field, a bare LF, a missing CRLF). */
static int csv_row(const char **p, char fields[][512], int max)
{
    const char *q = *p;
    int n = 0;

    for (;;) {
        size_t len = 0;

        assert_true(n < max);
        if (*q == '"') {
            for (q++;; len++) {
                assert_true(*q != '\0' && len < 511);
                if (*q == '"' && q[1] != '"')
                    break;
                fields[n][len] = *q;
                q += *q == '"' ? 2 : 1;
            }
            q++;
        } else {
            for (; *q && *q != ',' && *q != '\r'; len++) {
                assert_true(*q != '"' && *q != '\n' && len < 511);
                fields[n][len] = *q++;
            }
        }
        fields[n++][len] = '\0';
        if (*q != ',')
            break;
        q++;
    }
    assert_int_equal(q[0], '\r');
    assert_int_equal(q[1], '\n');
    *p = q + 2;
    return n;
}

#endif
