"""One rectangular table per record type, from batches that interleave them."""

from gateway.core.tables import Tables

NMEA_BATCH = (
    b"seq,received_at,record_type,fields\n"
    b'0,1.0,GPGGA,"123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"\n'
    b'1,1.0,GPGSV,"3,1,11,03,03,111,00,04,15,270,00,06,01,010,00,13,06,292,00"\n'
    b'2,1.1,GPGSV,"3,3,11,22,42,067,42"\n'
    b"3,1.2,GPTXT,\n"
    b'4,1.3,GPGGA,"123520,4807.039,N,01131.001,E,1,08,0.9,545.5,M,46.9,M,,"\n'
)


def test_each_record_type_gets_its_own_table_padded_to_its_widest_row():
    tables = Tables()
    tables.add(NMEA_BATCH)
    assert tables.counts() == {"GPGGA": 2, "GPGSV": 2, "GPTXT": 1}
    gga = tables.tables["GPGGA"].as_csv().decode().splitlines()
    assert gga[0] == "seq,received_at," + ",".join(f"f{n}" for n in range(1, 15))
    assert gga[1] == "0,1.0,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"
    gsv = tables.tables["GPGSV"].as_csv().decode().splitlines()
    assert gsv[0].count(",") == gsv[1].count(",") == gsv[2].count(",") == 20
    assert gsv[2] == "2,1.1,3,3,11,22,42,067,42" + "," * 12
    assert tables.tables["GPTXT"].as_csv() == b"seq,received_at\n3,1.2\n"


def test_other_formats_give_one_table_per_shape():
    tables = Tables()
    tables.add(b'seq,received_at,time,temp\n0,1.0,12:00,"21,5"\n')
    tables.add(b'seq,received_at,time,temp\n1,2.0,12:01,"21,6"\n')
    tables.add(b'seq,received_at,time,temp,rh\n2,3.0,12:02,"21,7",40\n')
    assert tables.counts() == {"rows": 2, "rows-2": 1}
    assert tables.tables["rows"].as_csv() == (
        b'seq,received_at,time,temp\n0,1.0,12:00,"21,5"\n1,2.0,12:01,"21,6"\n'
    )
    assert tables.tables["rows-2"].columns == ("time", "temp", "rh")
