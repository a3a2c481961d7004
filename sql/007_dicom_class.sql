-- 007_dicom_class.sql — the SOP Class UID of a DICOM original, which
-- DICOMweb answers (QIDO-RS instances, WADO-RS metadata, STOW-RS) name.
-- NULL for images stored before this migration and for every non-DICOM
-- image. A column added, never a rebuild, as in 006.

ALTER TABLE case_images
    ADD COLUMN IF NOT EXISTS sop_class_uid text;
